package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;

/** Its constructor throws: an init error with the constructor's exception. */
public class BadConstructor implements RequestHandler<Object, Object> {
    public BadConstructor() {
        throw new IllegalStateException("no database");
    }

    @Override
    public Object handleRequest(Object event, Context context) {
        return null;
    }
}
