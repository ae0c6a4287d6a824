// Test fixture: aws-lambda-java-core API (see Context.java). The runtime replaces `logger`.
package com.amazonaws.services.lambda.runtime;

public final class LambdaRuntime {
    private static volatile LambdaLogger logger = new LambdaLogger() {
        public void log(String message) {
            System.out.print(message);
        }

        public void log(byte[] message) {
            System.out.write(message, 0, message.length);
        }
    };

    private LambdaRuntime() {}

    public static LambdaLogger getLogger() {
        return logger;
    }
}
