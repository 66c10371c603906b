"""NoteLLM-2: frozen ViT -> Q-Former -> projector -> decoder LLM (mICL prompt) ->
late fusion -> 64-d."""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers import initialization as init

from notellm2_udf.model.configuration import NoteLLM2Config
from notellm2_udf.model.connector import LateFusion, QFormerConnector, VisualProjector


@dataclass
class NoteLLM2Output:
    """What `NoteLLM2Model.forward` returns.

    embedding: [batch, embed_dim] float32, L2-normalised multimodal note embedding (n_m path).
    visual_embedding: [batch, embed_dim] float32, L2-normalised visual embedding (n_v path).
    multimodal_hidden_state: [batch, llm_hidden], n_m before late fusion and projection.
    visual_hidden_state: [batch, llm_hidden], the visual state before late fusion and
        projection: n_v, or the image vector v in `late_only`, or the no-image vector for
        rows without an image (only under missing_image="learned_vector").
    """

    embedding: torch.Tensor
    visual_embedding: torch.Tensor
    multimodal_hidden_state: torch.Tensor
    visual_hidden_state: torch.Tensor


class NoteLLM2PreTrainedModel(PreTrainedModel):
    config: NoteLLM2Config
    base_model_prefix = "model"
    input_modalities = ("image", "text")
    _supports_sdpa = True
    _supports_attention_backend = True

    def _init_weights(self, module):
        # Children are initialised before their parent, and an initialised tensor is never
        # initialised twice: the gate's own Linear must get the paper's xavier-normal init.
        late_fusion = getattr(self, "late_fusion", None)
        if late_fusion is not None and module is late_fusion.gate:
            init.xavier_normal_(module.weight)
            return
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, QFormerConnector):
            init.zeros_(module.query_tokens)  # the authors' init
        elif isinstance(module, NoteLLM2Model) and module.no_image_embedding is not None:
            init.normal_(module.no_image_embedding, std=std)


class NoteLLM2Model(NoteLLM2PreTrainedModel):
    """The NoteLLM-2 representation model; which parts exist depends on `config.fusion`."""

    def __init__(self, config: NoteLLM2Config):
        super().__init__(config)
        self.vision_tower = AutoModel.from_config(config.vision_config)
        self.vision_tower.requires_grad_(False)
        if config.uses_image_tokens:
            self.connector = QFormerConnector(config)
            self.projector = VisualProjector(config)
        self.language_model = AutoModel.from_config(config.text_config)
        if config.uses_late_fusion:
            self.late_fusion = LateFusion(config)
        hidden = config.text_config.hidden_size
        # missing_image="learned_vector": stands in for the image of notes without one (the
        # image vector v in late fusion, the visual state behind `visual_embedding`). The
        # authors' zero image needs none; a row without an image segment then gets zeros.
        self.no_image_embedding = (nn.Parameter(torch.zeros(hidden))
                                   if config.missing_image == "learned_vector" else None)
        self.embedding_projection = nn.Linear(hidden, config.embed_dim, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def forward(
        self,
        input_ids: torch.LongTensor,
        embedding_positions: torch.LongTensor,
        visual_positions: torch.LongTensor,
        has_image: torch.BoolTensor,
        pixel_values: torch.Tensor | None = None,
    ) -> NoteLLM2Output:
        r"""
        input_ids: [batch, length], right-padded. With right padding and causal attention a
            real token never attends to a pad, so no attention mask is passed and positions
            start at 0 in every row: a row's states do not depend on its neighbours.
            Rows with an image hold `num_query_tokens` `<IMG>` ids (unless fusion is late_only).
        embedding_positions: [batch], index of the last prompt token (n_m).
        visual_positions: [batch], index of the token before `<IMG_EMB>` (n_v; the token ending
            the image field in `basic`); ignored for rows without an image and in late_only.
        has_image: [batch] bool.
        pixel_values: [has_image.sum(), 3, height, width], the images of the rows with one,
            in row order; None when no row has an image.
        """
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        inputs_embeds = self.get_input_embeddings()(input_ids)
        no_image = self._no_image_vector(inputs_embeds)
        image_vector = no_image.expand_as(inputs_embeds[:, 0])
        if pixel_values is not None and pixel_values.shape[0] > 0:
            # The ViT is frozen: no graph through it, also when training.
            with torch.no_grad():
                vision = self.vision_tower(pixel_values=pixel_values.to(inputs_embeds.dtype))
            if self.config.uses_image_tokens:
                visual_tokens = self.projector(self.connector(vision.last_hidden_state))
                inputs_embeds = self._place_visual_tokens(input_ids, inputs_embeds, visual_tokens)
            if self.config.uses_late_fusion:
                # The authors': the last layer's CLS before CLIP's post-layernorm.
                cls = (vision.last_hidden_state[:, 0] if self.config.late_fusion_input == "cls"
                       else vision.pooler_output)
                cls_vectors = self.late_fusion.project_image(cls)
                image_vector = image_vector.masked_scatter(has_image[:, None], cls_vectors)

        hidden = self.language_model(inputs_embeds=inputs_embeds).last_hidden_state
        multimodal_state = hidden[rows, embedding_positions]
        if self.config.fusion == "late_only":
            visual_state = image_vector
        else:
            visual_state = hidden[rows, visual_positions]
        visual_state = torch.where(has_image[:, None], visual_state,
                                   no_image.to(visual_state.dtype))

        fused_multimodal, fused_visual = multimodal_state, visual_state
        if self.config.uses_late_fusion:
            fused_multimodal = self.late_fusion(multimodal_state, image_vector)
            # For rows without an image h = v = the no-image vector, and the gate returns it.
            fused_visual = self.late_fusion(visual_state, image_vector)
        return NoteLLM2Output(
            embedding=self._embed(fused_multimodal),
            visual_embedding=self._embed(fused_visual),
            multimodal_hidden_state=multimodal_state,
            visual_hidden_state=visual_state,
        )

    def _no_image_vector(self, like: torch.Tensor) -> torch.Tensor:
        """[llm_hidden]: the learned no-image vector, or zeros when the model has none."""
        if self.no_image_embedding is not None:
            return self.no_image_embedding.to(like.dtype)
        return like.new_zeros(like.shape[-1])

    def _place_visual_tokens(
        self, input_ids: torch.Tensor, inputs_embeds: torch.Tensor, visual_tokens: torch.Tensor
    ) -> torch.Tensor:
        """Writes [images, num_query_tokens, hidden] visual tokens over the `<IMG>` slots."""
        slots = input_ids == self.config.image_token_id
        if int(slots.sum()) != visual_tokens.shape[0] * visual_tokens.shape[1]:
            raise ValueError(
                f"{int(slots.sum())} <IMG> slots in input_ids but {visual_tokens.shape[0]} images "
                f"x {visual_tokens.shape[1]} visual tokens"
            )
        return inputs_embeds.masked_scatter(slots[..., None], visual_tokens.to(inputs_embeds.dtype))

    def _embed(self, state: torch.Tensor) -> torch.Tensor:
        """[batch, llm_hidden] -> [batch, embed_dim] float32, unit L2 norm."""
        return nn.functional.normalize(self.embedding_projection(state).float(), dim=-1)
