// Test fixture: aws-lambda-java-core API (see Context.java).
package com.amazonaws.services.lambda.runtime;

public interface CognitoIdentity {
    String getIdentityId();

    String getIdentityPoolId();
}
