package kindling.runtime;

import java.io.PrintStream;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The {@code com.amazonaws.services.lambda.runtime} API (aws-lambda-java-core) as the function
 * sees it. The runtime never links against that library: its interfaces are loaded from the
 * function's own class loader (users bundle the library in their jar or a layer), and the
 * context, logger, identity and client context objects are {@link Proxy} instances of them.
 * A method the runtime does not know (a later version of the library) runs the interface's
 * default method, or throws UnsupportedOperationException.
 */
final class UserApi {
    static final String PACKAGE = "com.amazonaws.services.lambda.runtime.";
    static final String CONTEXT = PACKAGE + "Context";

    private static final String[] LEVELS = {"UNDEFINED", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};

    private final ClassLoader loader;
    private final Class<?> contextType;
    private final Class<?> loggerType;
    private final Object logger;
    private final PrintStream out;

    // Environment copied into every context, read once as AWS's runtime does.
    private final int memoryLimit;
    private final String logGroupName;
    private final String logStreamName;
    private final String functionName;
    private final String functionVersion;

    UserApi(ClassLoader loader, PrintStream out) {
        this.loader = loader;
        this.out = out;
        this.contextType = find(CONTEXT);
        this.loggerType = find(PACKAGE + "LambdaLogger");
        this.logger = loggerType == null ? null : proxy(loggerType, new Logger(out, minimumLevel()));
        int memory = 128;
        try {
            String text = System.getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
            if (text != null) {
                memory = Integer.parseInt(text.trim());
            }
        } catch (NumberFormatException e) {
            memory = 128;
        }
        this.memoryLimit = memory;
        this.logGroupName = System.getenv("AWS_LAMBDA_LOG_GROUP_NAME");
        this.logStreamName = System.getenv("AWS_LAMBDA_LOG_STREAM_NAME");
        this.functionName = System.getenv("AWS_LAMBDA_FUNCTION_NAME");
        this.functionVersion = System.getenv("AWS_LAMBDA_FUNCTION_VERSION");
    }

    /**
     * Makes {@code LambdaRuntime.getLogger()} return this runtime's logger, as AWS's runtime does
     * with the copy on its own class path. Done before the handler class loads, so static
     * initializers see it too. A function without aws-lambda-java-core is left alone.
     */
    void installRuntimeLogger() {
        if (logger == null) {
            return;
        }
        Class<?> runtime = find(PACKAGE + "LambdaRuntime");
        if (runtime == null) {
            return;
        }
        try {
            Field field = runtime.getDeclaredField("logger");
            field.setAccessible(true);
            field.set(null, logger);
        } catch (ReflectiveOperationException | RuntimeException e) {
            // An unexpected version of the library: the default logger (System.out) stays.
        }
    }

    Class<?> contextType() {
        return contextType;
    }


    /** A class of the user's copy of the library, or null when the function does not bundle it. */
    Class<?> find(String name) {
        try {
            return Class.forName(name, false, loader);
        } catch (ClassNotFoundException | LinkageError e) {
            return null;
        }
    }

    /** Writes a runtime log record (error reports) the way AWS's runtime logger does: raw text. */
    void log(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        synchronized (out) {
            out.write(bytes, 0, bytes.length);
            out.flush();
        }
    }

    /** The Context object for one invocation (null when the function has no Context interface). */
    Object newContext(RuntimeApi.Invocation invocation) {
        if (contextType == null) {
            return null;
        }
        Map<String, Object> identityFields = invocation.cognitoIdentity == null ? null
                : object(parseHeader(invocation.cognitoIdentity, "Lambda-Runtime-Cognito-Identity"));
        Map<String, Object> clientFields = invocation.clientContext == null ? null
                : object(parseHeader(invocation.clientContext, "Lambda-Runtime-Client-Context"));
        Object identity = null;
        if (identityFields != null) {
            Class<?> type = find(PACKAGE + "CognitoIdentity");
            if (type != null) {
                identity = proxy(type, new Fields("CognitoIdentity", identityFields, new String[] {
                    "getIdentityId", "cognitoIdentityId", "getIdentityPoolId", "cognitoIdentityPoolId"}));
            }
        }
        Object clientContext = clientFields == null ? null : clientContext(clientFields);
        return proxy(contextType, new Context(this, invocation, identity, clientContext));
    }

    private static Object parseHeader(String text, String header) {
        try {
            return Json.parse(text);
        } catch (Json.ParseException e) {
            throw new IllegalArgumentException("Cannot parse " + header + " as JSON: " + e.getMessage());
        }
    }

    /** Builds and calls a proxy of a JDK interface: loads the proxy machinery (CDS training). */
    static String exerciseProxies() {
        Map<String, Object> values = new LinkedHashMap<String, Object>();
        values.put("value", "trained");
        Object supplier = Proxy.newProxyInstance(UserApi.class.getClassLoader(), new Class<?>[] {java.util.function.Supplier.class},
                new Fields("Supplier", values, new String[] {"get", "value"}));
        // The context and logger handlers too (their proxies need the function's interfaces).
        Handler logger = new Logger(new PrintStream(java.io.OutputStream.nullOutputStream(), true, StandardCharsets.UTF_8), 0);
        Handler context = new Context(null, null, null, null);
        return ((java.util.function.Supplier<?>) supplier).get() + " " + supplier + " " + logger.name() + " " + context.getClass();
    }

    private Object clientContext(Map<String, Object> fields) {
        Class<?> type = find(PACKAGE + "ClientContext");
        if (type == null) {
            return null;
        }
        Object client = null;
        Class<?> clientType = find(PACKAGE + "Client");
        if (clientType != null && fields.get("client") instanceof Map) {
            client = proxy(clientType, new Fields("Client", object(fields.get("client")), new String[] {
                "getInstallationId", "installation_id", "getAppTitle", "app_title", "getAppVersionName", "app_version_name",
                "getAppVersionCode", "app_version_code", "getAppPackageName", "app_package_name"}));
        }
        Map<String, Object> values = new LinkedHashMap<String, Object>();
        values.put("client", client);
        values.put("custom", stringMap(fields.get("custom")));
        values.put("env", stringMap(fields.get("env")));
        return proxy(type, new Fields("ClientContext", values, new String[] {
            "getClient", "client", "getCustom", "custom", "getEnvironment", "env"}));
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> object(Object tree) {
        return tree instanceof Map ? (Map<String, Object>) tree : new LinkedHashMap<String, Object>();
    }

    /** A JSON object as Map<String, String> (the declared type of ClientContext's maps). */
    private static Map<String, String> stringMap(Object tree) {
        if (!(tree instanceof Map)) {
            return null;
        }
        Map<String, String> result = new LinkedHashMap<String, String>();
        for (Map.Entry<?, ?> entry : ((Map<?, ?>) tree).entrySet()) {
            Object value = entry.getValue();
            result.put(String.valueOf(entry.getKey()),
                    value == null || value instanceof String ? (String) value : Json.write(Json.natural(value)));
        }
        return result;
    }

    private Object proxy(Class<?> type, InvocationHandler handler) {
        return Proxy.newProxyInstance(loader, new Class<?>[] {type}, handler);
    }

    private static int minimumLevel() {
        String level = System.getenv("AWS_LAMBDA_LOG_LEVEL");
        int rank = level == null ? 0 : rank(level.toUpperCase());
        return rank < 0 ? 0 : rank;
    }

    private static int rank(String name) {
        for (int i = 0; i < LEVELS.length; i++) {
            if (LEVELS[i].equals(name)) {
                return i;
            }
        }
        return -1;
    }

    /** Behaviour shared by every proxy: Object's methods and interface default methods. */
    private abstract static class Handler implements InvocationHandler {
        abstract String name();

        /** The value for an interface method, or NOT_HANDLED. */
        abstract Object answer(Method method, Object[] args) throws Throwable;

        static final Object NOT_HANDLED = new Object();

        @Override
        public Object invoke(Object proxy, Method method, Object[] args) throws Throwable {
            if (method.getDeclaringClass() == Object.class) {
                switch (method.getName()) {
                    case "equals":
                        return Boolean.valueOf(proxy == args[0]);
                    case "hashCode":
                        return Integer.valueOf(System.identityHashCode(proxy));
                    default:
                        return name();
                }
            }
            Object value = answer(method, args);
            if (value != NOT_HANDLED) {
                return value;
            }
            if (method.isDefault()) {
                return InvocationHandler.invokeDefault(proxy, method, args);
            }
            throw new UnsupportedOperationException(method.getName() + " is not provided by this Lambda runtime");
        }
    }

    /** A read-only object over a map: getter name -> key. */
    private static final class Fields extends Handler {
        private final String name;
        private final Map<String, Object> values;
        private final String[] getters;

        Fields(String name, Map<String, Object> values, String[] getters) {
            this.name = name;
            this.values = values;
            this.getters = getters;
        }

        @Override
        String name() {
            StringBuilder text = new StringBuilder(name).append('(');
            for (int i = 0; i < getters.length; i += 2) {
                text.append(i == 0 ? "" : ", ").append(getters[i + 1]).append('=').append(values.get(getters[i + 1]));
            }
            return text.append(')').toString();
        }

        @Override
        Object answer(Method method, Object[] args) {
            for (int i = 0; i < getters.length; i += 2) {
                if (getters[i].equals(method.getName()) && method.getParameterCount() == 0) {
                    Object value = values.get(getters[i + 1]);
                    return value instanceof Json.Num ? value.toString() : value;
                }
            }
            return NOT_HANDLED;
        }
    }

    /** The Context of one invocation. */
    private static final class Context extends Handler {
        private final UserApi api;
        private final RuntimeApi.Invocation invocation;
        private final Object identity;
        private final Object clientContext;

        Context(UserApi api, RuntimeApi.Invocation invocation, Object identity, Object clientContext) {
            this.api = api;
            this.invocation = invocation;
            this.identity = identity;
            this.clientContext = clientContext;
        }

        @Override
        String name() {
            return "LambdaContext(awsRequestId=" + invocation.requestId + ", functionName=" + api.functionName + ")";
        }

        @Override
        Object answer(Method method, Object[] args) {
            if (method.getParameterCount() != 0) {
                return NOT_HANDLED;
            }
            switch (method.getName()) {
                case "getAwsRequestId":
                    return invocation.requestId;
                case "getLogGroupName":
                    return api.logGroupName;
                case "getLogStreamName":
                    return api.logStreamName;
                case "getFunctionName":
                    return api.functionName;
                case "getFunctionVersion":
                    return api.functionVersion;
                case "getInvokedFunctionArn":
                    return invocation.invokedFunctionArn;
                case "getIdentity":
                    return identity;
                case "getClientContext":
                    return clientContext;
                case "getRemainingTimeInMillis":
                    long remaining = invocation.deadlineMs - System.currentTimeMillis();
                    return Integer.valueOf(remaining > 0 ? (int) Math.min(remaining, Integer.MAX_VALUE) : 0);
                case "getMemoryLimitInMB":
                    return Integer.valueOf(api.memoryLimit);
                case "getLogger":
                    return api.logger;
                case "getTenantId":
                    return invocation.tenantId;
                case "getXrayTraceId":
                    return invocation.traceId;
                default:
                    return NOT_HANDLED;
            }
        }
    }

    /**
     * LambdaLogger: text goes to stdout as is (no newline added); with a level it is prefixed
     * "[LEVEL] " and dropped below AWS_LAMBDA_LOG_LEVEL, as AWS's text-format logger does.
     */
    private static final class Logger extends Handler {
        private final PrintStream out;
        private final int minimum;

        Logger(PrintStream out, int minimum) {
            this.out = out;
            this.minimum = minimum;
        }

        @Override
        String name() {
            return "LambdaLogger";
        }

        @Override
        Object answer(Method method, Object[] args) {
            if (!method.getName().equals("log") || args == null || args.length == 0 || args.length > 2) {
                return NOT_HANDLED;
            }
            String level = "UNDEFINED";
            if (args.length == 2 && args[1] instanceof Enum) {
                level = ((Enum<?>) args[1]).name();
            }
            int rank = rank(level);
            if (rank > 0 && rank < minimum) {
                return null;
            }
            byte[] bytes;
            if (args[0] instanceof byte[]) {
                bytes = (byte[]) args[0];
            } else {
                String message = args[0] == null ? "null" : args[0].toString();
                if (rank > 0) {
                    message = "[" + level + "] " + message;
                }
                bytes = message.getBytes(StandardCharsets.UTF_8);
            }
            synchronized (out) {
                out.write(bytes, 0, bytes.length);
                out.flush();
            }
            return null;
        }
    }
}
