package kindling.runtime;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.Map;
import java.util.function.Function;

/**
 * The classes of {@code kindling.runtime.user} (implementations of the aws-lambda-java-core
 * interfaces), defined from this jar's class files in a child of the function's class loader, so
 * that they implement the function's own copy of the interfaces.
 *
 * <p>{@link #load} returns null when that copy does not fit them (a class missing, a signature
 * changed, an abstract method they do not implement); the runtime then uses proxies instead.
 */
final class UserTypes extends ClassLoader {
    private static final String IMPLEMENTATIONS = "kindling.runtime.user.";

    static {
        registerAsParallelCapable();
    }

    private final UserApi api;
    // Each class's Factory (a java.util.function.Function): plain interface calls, no reflection,
    // which on JDK 18+ would spin method-handle classes at the first call of every shape.
    private Function<Object[], Object> context;
    private Function<Object[], Object> logger;
    private Function<Object[], Object> identity;
    private Function<Object[], Object> clientContext;
    private Function<Object[], Object> client;

    private UserTypes(ClassLoader functionLoader, UserApi api) {
        super(functionLoader);
        this.api = api;
    }

    /** The implementations for this function, or null to use proxies. */
    static UserTypes load(ClassLoader functionLoader, UserApi api) {
        if (Boolean.getBoolean("kindling.java.proxies")) {
            return null;
        }
        try {
            UserTypes types = new UserTypes(functionLoader, api);
            types.context = types.implementation("Context", "LambdaContextImpl");
            types.logger = types.implementation("LambdaLogger", "LambdaLoggerImpl");
            types.identity = types.implementation("CognitoIdentity", "CognitoIdentityImpl");
            types.clientContext = types.implementation("ClientContext", "ClientContextImpl");
            types.client = types.implementation("Client", "ClientImpl");
            return types;
        } catch (ReflectiveOperationException | LinkageError | RuntimeException e) {
            return null;
        }
    }

    @Override
    protected Class<?> findClass(String name) throws ClassNotFoundException {
        if (!name.startsWith(IMPLEMENTATIONS)) {
            throw new ClassNotFoundException(name);
        }
        String resource = name.replace('.', '/') + ".class";
        try (InputStream in = UserTypes.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) {
                throw new ClassNotFoundException(name);
            }
            byte[] bytes = in.readAllBytes();
            return defineClass(name, bytes, 0, bytes.length);
        } catch (IOException e) {
            throw new ClassNotFoundException(name, e);
        }
    }

    /** The implementation's factory, after checking the class fits the function's interface. */
    @SuppressWarnings("unchecked")
    private Function<Object[], Object> implementation(String interfaceName, String className) throws ReflectiveOperationException {
        Class<?> type = api.find(UserApi.PACKAGE + interfaceName);
        if (type == null) {
            throw new ClassNotFoundException(UserApi.PACKAGE + interfaceName);
        }
        Class<?> implementation = Class.forName(IMPLEMENTATIONS + className, true, this);
        if (!type.isAssignableFrom(implementation)) {
            throw new IncompatibleClassChangeError(className + " does not implement the function's " + interfaceName);
        }
        for (Method method : type.getMethods()) {
            if (Modifier.isAbstract(method.getModifiers())
                    && Modifier.isAbstract(implementation.getMethod(method.getName(), method.getParameterTypes()).getModifiers())) {
                throw new AbstractMethodError(className + " lacks " + method);
            }
        }
        Class<?> factory = Class.forName(IMPLEMENTATIONS + className + "$Factory", true, this);
        return (Function<Object[], Object>) factory.getConstructor().newInstance();
    }

    Object newLogger(PrintStream out, int minimumLevel) {
        return logger.apply(new Object[] {out, Integer.valueOf(minimumLevel)});
    }

    Object newIdentity(Map<String, Object> fields) {
        return identity.apply(new Object[] {text(fields.get("cognitoIdentityId")), text(fields.get("cognitoIdentityPoolId"))});
    }

    Object newClient(Map<String, Object> fields) {
        return client.apply(new Object[] {text(fields.get("installation_id")), text(fields.get("app_title")),
            text(fields.get("app_version_name")), text(fields.get("app_version_code")), text(fields.get("app_package_name"))});
    }

    Object newClientContext(Object client, Map<String, String> custom, Map<String, String> environment) {
        return clientContext.apply(new Object[] {client, custom, environment});
    }

    Object newContext(RuntimeApi.Invocation invocation, Object identity, Object clientContext, Object logger,
            String logGroupName, String logStreamName, String functionName, String functionVersion, int memoryLimit) {
        return context.apply(new Object[] {invocation.requestId, Long.valueOf(invocation.deadlineMs), invocation.invokedFunctionArn,
            invocation.traceId, invocation.tenantId, identity, clientContext, logger, logGroupName, logStreamName,
            functionName, functionVersion, Integer.valueOf(memoryLimit)});
    }

    private static String text(Object value) {
        return value == null ? null : value.toString();
    }
}
