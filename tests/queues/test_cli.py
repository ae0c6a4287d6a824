"""The aws CLI (v1) against SQS and SNS, configured with AWS_ENDPOINT_URL.

aws CLI v1 replaces the endpoint of `aws sqs` commands with SQS's legacy host
(`queue.amazonaws.com`, awscli/customizations/overridesslcommonname.py) unless `--endpoint-url`
is given, so its SQS commands name the endpoint explicitly; v2 and boto3 honour the variable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from qsupport import unique


def aws(endpoint, *args):
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint)
    extra = ["--endpoint-url", endpoint] if args[0] == "sqs" else []
    proc = subprocess.run([sys.executable, "-m", "awscli", *args, *extra, "--output", "json"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def test_cli_queue_and_topic(endpoint):
    name = unique()
    url = aws(endpoint, "sqs", "create-queue", "--queue-name", name)["QueueUrl"]
    arn = aws(endpoint, "sqs", "get-queue-attributes", "--queue-url", url,
              "--attribute-names", "QueueArn")["Attributes"]["QueueArn"]
    topic = aws(endpoint, "sns", "create-topic", "--name", unique("t"))["TopicArn"]
    aws(endpoint, "sns", "subscribe", "--topic-arn", topic, "--protocol", "sqs",
        "--notification-endpoint", arn, "--attributes", "RawMessageDelivery=true")
    aws(endpoint, "sns", "publish", "--topic-arn", topic, "--message", "from the cli")
    sent = aws(endpoint, "sqs", "send-message", "--queue-url", url, "--message-body", "direct")
    assert len(sent["MD5OfMessageBody"]) == 32
    got = []
    for _ in range(10):
        r = aws(endpoint, "sqs", "receive-message", "--queue-url", url,
                "--max-number-of-messages", "10", "--wait-time-seconds", "1")
        for m in (r or {}).get("Messages", []):
            got.append(m["Body"])
            aws(endpoint, "sqs", "delete-message", "--queue-url", url,
                "--receipt-handle", m["ReceiptHandle"])
        if len(got) == 2:
            break
    assert sorted(got) == ["direct", "from the cli"]
    assert url in aws(endpoint, "sqs", "list-queues", "--queue-name-prefix", name)["QueueUrls"]
