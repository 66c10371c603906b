"""spark-submit this: builds the project session and prints the settings tests check."""

import json

from notellm2_udf.spark.session import SparkSettings, build_spark_session

spark = build_spark_session(SparkSettings(app_name="print-session-conf"))
keys = ["spark.sql.session.timeZone", "spark.sql.catalogImplementation",
        "spark.sql.extensions", "spark.driver.host", "spark.master"]
print("CONF " + json.dumps({key: spark.conf.get(key, None) for key in keys}))
spark.stop()
