package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.LinkedHashMap;
import java.util.Map;

public class Counter implements RequestHandler<Map<String, Object>, Map<String, Object>> {
    private static int calls;

    @Override
    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
        calls++;
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("calls", calls);
        result.put("pid", ProcessHandle.current().pid());
        return result;
    }
}
