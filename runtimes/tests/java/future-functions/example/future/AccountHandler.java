package example.future;

import com.amazonaws.services.lambda.runtime.Context;

public class AccountHandler {
    public String handle(Object event, Context context) {
        try {
            return context.getFunctionName() + "|" + context.getAccountId();
        } catch (UnsupportedOperationException e) {
            return context.getFunctionName() + "|" + e.getMessage() + "|" + java.lang.reflect.Proxy.isProxyClass(context.getClass());
        }
    }
}
