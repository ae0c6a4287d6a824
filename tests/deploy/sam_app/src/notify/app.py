import json

from shared_util import describe_order


def handler(event, context):
    messages = [json.loads(r["Sns"]["Message"]) for r in event["Records"]]
    return {"notified": [describe_order(m["id"]) for m in messages]}
