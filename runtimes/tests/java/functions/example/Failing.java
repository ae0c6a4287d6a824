package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.Map;

public class Failing implements RequestHandler<Map<String, Object>, Object> {
    static void validate(Map<String, Object> event) {
        throw new IllegalArgumentException("bad input: " + event.get("n"));
    }

    @Override
    public Object handleRequest(Map<String, Object> event, Context context) {
        validate(event);
        return null;
    }

    /** The same failure from a Class::method handler. */
    public Object viaMethod(Map<String, Object> event) {
        validate(event);
        return null;
    }

    /** An error the JVM cannot be trusted to survive: the runtime exits after reporting it. */
    public Object fatal(Map<String, Object> event) {
        throw new OutOfMemoryError("simulated: " + event.get("n"));
    }

    /** An exception with a cause chain. */
    public Object chained(Map<String, Object> event) {
        try {
            validate(event);
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException("wrapped", e);
        }
        return null;
    }
}
