// aws-lambda-java-core API, compile-time only (see Context.java).
package com.amazonaws.services.lambda.runtime;

public interface CognitoIdentity {
    String getIdentityId();

    String getIdentityPoolId();
}
