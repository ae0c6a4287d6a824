// Test fixture: aws-lambda-java-core API (see Context.java).
package com.amazonaws.services.lambda.runtime;

public interface Client {
    String getInstallationId();

    String getAppTitle();

    String getAppVersionName();

    String getAppVersionCode();

    String getAppPackageName();
}
