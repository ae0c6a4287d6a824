// aws-lambda-java-core API, compile-time only (see ../Context.java).
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
