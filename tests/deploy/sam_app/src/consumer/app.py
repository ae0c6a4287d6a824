import json

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record):
    order = json.loads(record.body)
    if order.get("fail"):
        raise ValueError(f"order {order['id']} cannot be processed")


def handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler,
                                    processor=processor, context=context)
