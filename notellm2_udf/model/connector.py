"""The small modules between NoteLLM-2's vision tower, its LLM and its output."""

import torch
from torch import nn
from transformers import Blip2QFormerModel
from transformers.activations import ACT2FN

from notellm2_udf.model.configuration import NoteLLM2Config


class QFormerConnector(nn.Module):
    """BLIP-2 Q-Former: learnable queries cross-attend into the frozen ViT's tokens.

    Input [images, patches, vision_hidden]; output [images, num_query_tokens, qformer_hidden].
    The queries have the Q-Former's width (qformer_config.hidden_size), which need not be
    the ViT's: the cross-attention maps vision_hidden to it (ViT-bigG 1664 -> 768 or 1536).
    As the authors, the ViT's last-layer tokens go in raw; `qformer_input_layernorm` (v1
    checkpoints) puts BLIP-2's ln_vision in front.
    """

    def __init__(self, config: NoteLLM2Config):
        super().__init__()
        self.vision_layernorm = (nn.LayerNorm(config.vision_config.hidden_size)
                                 if config.qformer_input_layernorm else nn.Identity())
        self.query_tokens = nn.Parameter(
            torch.zeros(1, config.num_query_tokens, config.qformer_config.hidden_size)
        )
        self.qformer = Blip2QFormerModel._from_config(config.qformer_config)

    def forward(self, vision_tokens: torch.Tensor) -> torch.Tensor:
        queries = self.query_tokens.expand(vision_tokens.shape[0], -1, -1)
        return self.qformer(
            query_embeds=queries, encoder_hidden_states=self.vision_layernorm(vision_tokens)
        ).last_hidden_state


class VisualProjector(nn.Module):
    """Linear -> GELU -> Linear from Q-Former outputs to LLM input embeddings.

    Input [images, num_query_tokens, qformer_hidden]; output [images, num_query_tokens, llm_hidden].
    """

    def __init__(self, config: NoteLLM2Config):
        super().__init__()
        text_hidden = config.text_config.hidden_size
        self.linear_1 = nn.Linear(config.qformer_config.hidden_size, text_hidden)
        self.act = ACT2FN[config.projector_hidden_act]
        self.linear_2 = nn.Linear(text_hidden, text_hidden)

    def forward(self, query_outputs: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(query_outputs)))


class LateFusion(nn.Module):
    """NoteLLM-2's late-fusion gate between an LLM hidden state h and the ViT's CLS vector.

    v = W_v cls;  z = sigmoid(W_g [h; v]);  e = z * h + (1 - z) * v   (elementwise).
    """

    def __init__(self, config: NoteLLM2Config):
        super().__init__()
        text_hidden = config.text_config.hidden_size
        self.vision_proj = nn.Linear(config.vision_config.hidden_size, text_hidden, bias=False)
        self.gate = nn.Linear(2 * text_hidden, text_hidden, bias=False)

    def project_image(self, cls: torch.Tensor) -> torch.Tensor:
        """[images, vision_hidden] -> v [images, llm_hidden]."""
        return self.vision_proj(cls)

    def forward(self, hidden: torch.Tensor, image_vector: torch.Tensor) -> torch.Tensor:
        """h [batch, llm_hidden], v [batch, llm_hidden] -> e [batch, llm_hidden]."""
        z = torch.sigmoid(self.gate(torch.cat([hidden, image_vector], dim=-1)))
        return z * hidden + (1 - z) * image_vector
