from aws_lambda_powertools import Logger
from shared_util import describe_order

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    logger.info("order received", extra={"order": event.get("id")})
    return {"message": describe_order(event.get("id", "?")), "version": context.function_version}
