package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.LinkedHashMap;
import java.util.Map;

public class Environment implements RequestHandler<Map<String, Object>, Map<String, Object>> {
    @Override
    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
        Map<String, Object> env = new LinkedHashMap<>();
        for (String name : new String[] {"AWS_LAMBDA_FUNCTION_NAME", "_HANDLER", "LAMBDA_TASK_ROOT", "AWS_REGION",
                "_X_AMZN_TRACE_ID", "CUSTOM_SETTING"}) {
            env.put(name, System.getenv(name));
        }
        Map<String, Object> fields = new LinkedHashMap<>();
        fields.put("aws_request_id", context.getAwsRequestId());
        fields.put("function_name", context.getFunctionName());
        fields.put("function_version", context.getFunctionVersion());
        fields.put("invoked_function_arn", context.getInvokedFunctionArn());
        fields.put("memory_limit_in_mb", context.getMemoryLimitInMB());
        fields.put("log_group_name", context.getLogGroupName());
        fields.put("log_stream_name", context.getLogStreamName());
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("env", env);
        result.put("context", fields);
        result.put("trace_property", System.getProperty("com.amazonaws.xray.traceHeader"));
        result.put("trace_context", context.getXrayTraceId());
        result.put("context_class_loader_is_function_loader",
                Thread.currentThread().getContextClassLoader() == Environment.class.getClassLoader());
        return result;
    }
}
