package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.LinkedHashMap;
import java.util.Map;

public class Documents implements RequestHandler<Map<String, Object>, Object> {
    @Override
    public Object handleRequest(Map<String, Object> event, Context context) {
        if ("proxy".equals(event.get("kind"))) {
            Map<String, Object> response = new LinkedHashMap<>();
            response.put("statusCode", 201);
            response.put("headers", Map.of("X-Id", context.getAwsRequestId()));
            response.put("body", "{\"ok\": true}");
            response.put("isBase64Encoded", false);
            return response;
        }
        return null;
    }
}
