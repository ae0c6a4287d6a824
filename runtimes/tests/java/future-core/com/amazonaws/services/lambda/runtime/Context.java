// Test fixture: a hypothetical later aws-lambda-java-core whose Context has a method Kindling's
// runtime does not know. Calling it must fail clearly; the other methods keep working.
package com.amazonaws.services.lambda.runtime;

public interface Context {
    String getAwsRequestId();

    String getLogGroupName();

    String getLogStreamName();

    String getFunctionName();

    String getFunctionVersion();

    String getInvokedFunctionArn();

    CognitoIdentity getIdentity();

    ClientContext getClientContext();

    int getRemainingTimeInMillis();

    int getMemoryLimitInMB();

    LambdaLogger getLogger();

    String getAccountId();
}
