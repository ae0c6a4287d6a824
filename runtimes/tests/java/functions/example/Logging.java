package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.LambdaRuntime;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
import java.util.Map;

public class Logging {
    private static final LambdaLogger AT_LOAD = LambdaRuntime.getLogger();

    public boolean handle(Map<String, Object> event, Context context) {
        LambdaLogger logger = context.getLogger();
        logger.log("plain line\n");
        logger.log("bytes line\n".getBytes());
        logger.log("debug hidden\n", LogLevel.DEBUG);
        logger.log("warn shown\n", LogLevel.WARN);
        LambdaRuntime.getLogger().log("via LambdaRuntime\n");
        System.out.println("stdout h\u00e9llo");
        System.err.println("stderr line");
        return AT_LOAD == logger && LambdaRuntime.getLogger() == logger;
    }
}
