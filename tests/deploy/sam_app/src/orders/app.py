from aws_lambda_powertools import Logger
from shared_util import describe_order

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    order_id = event.get("id") or (event.get("queryStringParameters") or {}).get("id", "?")
    logger.info("order received", extra={"order": order_id})
    return {"message": describe_order(order_id), "version": context.function_version}
