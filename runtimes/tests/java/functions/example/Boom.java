package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;

/** Fails while its class initializes: an init error. */
public class Boom implements RequestHandler<Object, Object> {
    static final String CONFIG = load();

    static String load() {
        throw new IllegalStateException("config missing");
    }

    @Override
    public Object handleRequest(Object event, Context context) {
        return CONFIG;
    }
}
