package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;

/** Returns the event as it came (an untyped tree: maps, lists, numbers, strings...). */
public class Echo implements RequestHandler<Object, Object> {
    @Override
    public Object handleRequest(Object event, Context context) {
        return event;
    }
}
