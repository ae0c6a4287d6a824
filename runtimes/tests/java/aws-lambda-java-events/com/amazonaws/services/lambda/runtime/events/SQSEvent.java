// Test fixture: the shape of aws-lambda-java-events' SQSEvent (bean properties whose names differ
// from the JSON ones: "Records", "eventSourceARN"), written for Kindling's tests.
package com.amazonaws.services.lambda.runtime.events;

import java.util.List;
import java.util.Map;

public class SQSEvent {
    private List<SQSMessage> records;

    public List<SQSMessage> getRecords() {
        return records;
    }

    public void setRecords(List<SQSMessage> records) {
        this.records = records;
    }

    public static class SQSMessage {
        private String messageId;
        private String body;
        private String eventSourceArn;
        private Map<String, String> attributes;

        public String getMessageId() {
            return messageId;
        }

        public void setMessageId(String messageId) {
            this.messageId = messageId;
        }

        public String getBody() {
            return body;
        }

        public void setBody(String body) {
            this.body = body;
        }

        public String getEventSourceArn() {
            return eventSourceArn;
        }

        public void setEventSourceArn(String eventSourceArn) {
            this.eventSourceArn = eventSourceArn;
        }

        public Map<String, String> getAttributes() {
            return attributes;
        }

        public void setAttributes(Map<String, String> attributes) {
            this.attributes = attributes;
        }
    }
}
