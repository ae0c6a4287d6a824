package kindling.runtime.user;

import com.amazonaws.services.lambda.runtime.ClientContext;
import com.amazonaws.services.lambda.runtime.CognitoIdentity;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;

/** The Context of one invocation. */
public final class LambdaContextImpl implements Context {
    private final String awsRequestId;
    private final long deadlineMs;
    private final String invokedFunctionArn;
    private final String xrayTraceId;
    private final String tenantId;
    private final CognitoIdentity identity;
    private final ClientContext clientContext;
    private final LambdaLogger logger;
    private final String logGroupName;
    private final String logStreamName;
    private final String functionName;
    private final String functionVersion;
    private final int memoryLimitInMB;

    public LambdaContextImpl(String awsRequestId, long deadlineMs, String invokedFunctionArn, String xrayTraceId,
            String tenantId, CognitoIdentity identity, ClientContext clientContext, LambdaLogger logger,
            String logGroupName, String logStreamName, String functionName, String functionVersion, int memoryLimitInMB) {
        this.awsRequestId = awsRequestId;
        this.deadlineMs = deadlineMs;
        this.invokedFunctionArn = invokedFunctionArn;
        this.xrayTraceId = xrayTraceId;
        this.tenantId = tenantId;
        this.identity = identity;
        this.clientContext = clientContext;
        this.logger = logger;
        this.logGroupName = logGroupName;
        this.logStreamName = logStreamName;
        this.functionName = functionName;
        this.functionVersion = functionVersion;
        this.memoryLimitInMB = memoryLimitInMB;
    }

    @Override
    public String getAwsRequestId() {
        return awsRequestId;
    }

    @Override
    public String getLogGroupName() {
        return logGroupName;
    }

    @Override
    public String getLogStreamName() {
        return logStreamName;
    }

    @Override
    public String getFunctionName() {
        return functionName;
    }

    @Override
    public String getFunctionVersion() {
        return functionVersion;
    }

    @Override
    public String getInvokedFunctionArn() {
        return invokedFunctionArn;
    }

    @Override
    public CognitoIdentity getIdentity() {
        return identity;
    }

    @Override
    public ClientContext getClientContext() {
        return clientContext;
    }

    @Override
    public int getRemainingTimeInMillis() {
        long remaining = deadlineMs - System.currentTimeMillis();
        return remaining > 0 ? (int) Math.min(remaining, Integer.MAX_VALUE) : 0;
    }

    @Override
    public int getMemoryLimitInMB() {
        return memoryLimitInMB;
    }

    @Override
    public LambdaLogger getLogger() {
        return logger;
    }

    @Override
    public String getTenantId() {
        return tenantId;
    }

    @Override
    public String getXrayTraceId() {
        return xrayTraceId;
    }

    @Override
    public String toString() {
        return "LambdaContext(awsRequestId=" + awsRequestId + ", functionName=" + functionName + ")";
    }

    /** Creates instances from the runtime's side without reflection: {@code apply(new Object[] {...})}. */
    public static final class Factory implements java.util.function.Function<Object[], Object> {
        @Override
        public Object apply(Object[] a) {
            return new LambdaContextImpl((String) a[0], ((Long) a[1]).longValue(), (String) a[2], (String) a[3], (String) a[4], (CognitoIdentity) a[5], (ClientContext) a[6], (LambdaLogger) a[7], (String) a[8], (String) a[9], (String) a[10], (String) a[11], ((Integer) a[12]).intValue());
        }
    }
}
