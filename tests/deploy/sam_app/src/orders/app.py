import json

from aws_lambda_powertools import Logger
from shared_util import describe_order

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    order_id = event.get("id") or (event.get("queryStringParameters") or {}).get("id", "?")
    logger.info("order received", extra={"order": order_id})
    result = {"message": describe_order(order_id), "version": context.function_version}
    if "httpMethod" in event:
        # A REST API's proxy integration (payload 1.0) wants the whole HTTP response.
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                "body": json.dumps(result)}
    return result
