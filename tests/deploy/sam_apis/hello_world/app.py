import json

MESSAGE = "hello world"


def lambda_handler(event, context):
    name = (event.get("pathParameters") or {}).get("name")
    return {
        "statusCode": 200,
        "body": json.dumps({"message": MESSAGE, "name": name}),
    }
