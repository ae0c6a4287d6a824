package kindling.runtime;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOError;
import java.io.PrintStream;
import java.net.MalformedURLException;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;

/**
 * Kindling's Java runtime: loads the user's handler, then loops over the Lambda Runtime API
 * (2018-06-01), calling the handler once per invocation. Java 17 or newer, standard library only;
 * the aws-lambda-java-core interfaces come from the function's own jars (see {@link UserApi}).
 *
 * <pre>
 * java [JVM flags] -cp kindling-java-runtime.jar kindling.runtime.Bootstrap [HANDLER]
 * java -XX:ArchiveClassesAtExit=runtime.jsa -cp kindling-java-runtime.jar kindling.runtime.Bootstrap --cds-training
 * java -Xshare:on -XX:SharedArchiveFile=runtime.jsa -cp kindling-java-runtime.jar kindling.runtime.Bootstrap --cds-check
 * </pre>
 *
 * <p>Environment read: AWS_LAMBDA_RUNTIME_API (required), _HANDLER (argv[0] wins),
 * LAMBDA_TASK_ROOT (default: the working directory), AWS_LAMBDA_FUNCTION_NAME / _VERSION /
 * _MEMORY_SIZE, AWS_LAMBDA_LOG_GROUP_NAME / _STREAM_NAME (context), AWS_LAMBDA_LOG_LEVEL (logger).
 * System property {@code kindling.opt} (default /opt): the layer root; its java/lib jars are on
 * the function's class path. Written per invocation: system property
 * {@code com.amazonaws.xray.traceHeader} (cleared when an event has no trace header).
 *
 * <p>Errors follow AWS's Java runtime: an exception from the handler is posted as
 * {"errorMessage", "errorType": class name, "stackTrace": [frames]} with
 * {@code Lambda-Runtime-Function-Error-Type: Runtime.UserException}; problems with the function
 * itself as {"errorMessage", "errorType"} with {@code Runtime.BadFunctionCode}. Each is also logged
 * to stdout as "message: type" plus the stack trace. Init errors exit with status 1.
 */
public final class Bootstrap {
    static final String TRACE_PROPERTY = "com.amazonaws.xray.traceHeader";
    static final String USER_EXCEPTION = "Runtime.UserException";
    static final String BAD_FUNCTION_CODE = "Runtime.BadFunctionCode";

    private Bootstrap() {}

    public static void main(String[] args) {
        if (args.length > 0 && args[0].equals("--cds-training")) {
            Training.run();
            return;
        }
        if (args.length > 0 && args[0].equals("--cds-check")) {
            return; // started: with -Xshare:on that proves the archive maps (else the JVM exits with 1)
        }
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        System.setOut(out);
        System.setErr(new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8));
        String address = System.getenv("AWS_LAMBDA_RUNTIME_API");
        if (address == null || address.isEmpty()) {
            System.err.println("kindling java runtime: AWS_LAMBDA_RUNTIME_API is not set");
            System.exit(2);
        }
        String handler = args.length > 0 ? args[0] : System.getenv("_HANDLER");
        String taskRoot = System.getenv("LAMBDA_TASK_ROOT");
        if (taskRoot == null || taskRoot.isEmpty()) {
            taskRoot = System.getProperty("user.dir");
        }
        try {
            RuntimeApi api = new RuntimeApi(address);
            Loaded loaded = initialise(api, handler == null ? "" : handler, taskRoot, System.getProperty("kindling.opt", "/opt"), out);
            loop(api, loaded);
        } catch (RuntimeApi.ApiException e) {
            System.err.println("kindling java runtime: " + e.getMessage());
            System.exit(1);
        }
    }

    /** The handler and the API objects built for it. */
    static final class Loaded {
        final Function function;
        final UserApi userApi;

        Loaded(Function function, UserApi userApi) {
            this.function = function;
            this.userApi = userApi;
        }
    }

    /** Builds the function's class loader and loads its handler; on an init error reports it and exits. */
    static Loaded initialise(RuntimeApi api, String handler, String taskRoot, String optRoot, PrintStream out)
            throws RuntimeApi.ApiException {
        URLClassLoader loader;
        try {
            loader = FunctionLoader.classLoader(taskRoot, optRoot);
        } catch (MalformedURLException e) {
            throw new RuntimeApi.ApiException("cannot build the function class path: " + e.getMessage(), e);
        }
        Thread.currentThread().setContextClassLoader(loader);
        UserApi userApi = new UserApi(loader, out);
        userApi.installRuntimeLogger();
        try {
            return new Loaded(FunctionLoader.load(handler, loader, userApi), userApi);
        } catch (UserFault fault) {
            userApi.log(fault.reportable());
            api.postInitError(BAD_FUNCTION_CODE, fault.payload());
            System.exit(1);
            return null;
        }
    }

    static void loop(RuntimeApi api, Loaded loaded) throws RuntimeApi.ApiException {
        while (true) {
            RuntimeApi.Invocation invocation = api.next();
            if (!handle(api, loaded, invocation)) {
                System.exit(1);
            }
        }
    }

    /** Runs one invocation and posts its outcome; false when the runtime must stop afterwards. */
    static boolean handle(RuntimeApi api, Loaded loaded, RuntimeApi.Invocation invocation) throws RuntimeApi.ApiException {
        if (invocation.traceId != null) {
            System.setProperty(TRACE_PROPERTY, invocation.traceId);
        } else {
            System.clearProperty(TRACE_PROPERTY);
        }
        byte[] response;
        try {
            Object context = loaded.userApi.newContext(invocation);
            response = loaded.function.call(invocation.body, context);
        } catch (Throwable t) {
            UserFault.filterStackTrace(t, false);
            UserFault fault = UserFault.of(t, false);
            boolean fatal = t instanceof VirtualMachineError || t instanceof IOError || fault.fatal;
            if (t instanceof UserFault) {
                api.postError(invocation.requestId, BAD_FUNCTION_CODE, fault.payload());
            } else {
                api.postError(invocation.requestId, USER_EXCEPTION, UserFault.payload(t));
            }
            loaded.userApi.log(fault.reportable());
            return !fatal;
        }
        api.postResponse(invocation.requestId, response);
        Thread.interrupted(); // clear an interrupt flag the function left behind
        return true;
    }
}
