// Test fixture: aws-lambda-java-core API (see ../Context.java).
package com.amazonaws.services.lambda.runtime.logging;

public enum LogLevel {
    UNDEFINED,
    TRACE,
    DEBUG,
    INFO,
    WARN,
    ERROR,
    FATAL
}
