package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.List;
import java.util.Map;

public class RemainingTime implements RequestHandler<Map<String, Object>, List<Integer>> {
    @Override
    public List<Integer> handleRequest(Map<String, Object> event, Context context) {
        int first = context.getRemainingTimeInMillis();
        try {
            Thread.sleep(200);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return List.of(first, context.getRemainingTimeInMillis());
    }
}
