package kindling.runtime;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Type;
import java.nio.charset.StandardCharsets;

/**
 * The user's handler, ready to be called for one invocation: takes the raw event bytes and the
 * Context proxy, returns the response bytes. Three shapes, as in AWS's Java runtime:
 * a handler that always fails (a {@link UserFault} found while loading), a byte-stream handler
 * (InputStream / OutputStream), and a POJO handler (event and result through {@link Binder}).
 */
abstract class Function {
    private static final byte[] JSON_NULL = {'n', 'u', 'l', 'l'};

    abstract byte[] call(byte[] event, Object context) throws Throwable;

    /** A fault reported by every invocation (fatal ones end the runtime after reporting). */
    static final class Faulty extends Function {
        final UserFault fault;

        Faulty(UserFault fault) {
            this.fault = fault;
        }

        @Override
        byte[] call(byte[] event, Object context) {
            throw fault;
        }
    }

    /**
     * Calls `method` on `instance` (null for static methods) and unwraps the exception it throws.
     * `direct` marks calls AWS makes without reflection (interface methods of RequestHandler and
     * RequestStreamHandler): the reflection frames are then removed from the user's stack trace.
     */
    static Object invoke(Method method, Object instance, Object[] args, boolean direct) throws Throwable {
        try {
            return method.invoke(instance, args);
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            throw UserFault.filterStackTrace(cause, direct);
        }
    }

    /** (InputStream?, OutputStream?, Context?) handlers; the response is what was written. */
    static final class Stream extends Function {
        private final Method method;
        private final Object instance;
        private final boolean needsInput;
        private final boolean needsOutput;
        private final boolean needsContext;
        private final boolean direct;

        Stream(Method method, Object instance, boolean needsInput, boolean needsOutput, boolean needsContext, boolean direct) {
            this.method = method;
            this.instance = instance;
            this.needsInput = needsInput;
            this.needsOutput = needsOutput;
            this.needsContext = needsContext;
            this.direct = direct;
        }

        @Override
        byte[] call(byte[] event, Object context) throws Throwable {
            ByteArrayOutputStream output = new ByteArrayOutputStream(1024);
            Object[] args = new Object[(needsInput ? 1 : 0) + (needsOutput ? 1 : 0) + (needsContext ? 1 : 0)];
            int index = 0;
            if (needsInput) {
                args[index++] = new ByteArrayInputStream(event);
            }
            if (needsOutput) {
                args[index++] = output;
            }
            if (needsContext) {
                args[index] = context;
            }
            invoke(method, instance, args, direct);
            if (!needsOutput) {
                output.write(JSON_NULL);
            }
            return output.toByteArray();
        }
    }

    /** A handler taking an optional event of `inputType` and an optional Context, returning `outputType`. */
    static final class Pojo extends Function {
        private final Method method;
        private final Object instance;
        private final Type inputType;
        private final Type outputType;
        private final boolean needsContext;
        private final boolean direct;

        /** `inputType` null: no event parameter; `outputType` null: void, the response is null. */
        Pojo(Method method, Object instance, Type inputType, Type outputType, boolean needsContext, boolean direct) {
            this.method = method;
            this.instance = instance;
            this.inputType = inputType;
            this.outputType = outputType;
            this.needsContext = needsContext;
            this.direct = direct;
        }

        @Override
        byte[] call(byte[] event, Object context) throws Throwable {
            Object[] args = new Object[(inputType != null ? 1 : 0) + (needsContext ? 1 : 0)];
            int index = 0;
            if (inputType != null) {
                try {
                    args[index++] = Binder.fromJson(new String(event, StandardCharsets.UTF_8), inputType);
                } catch (Json.ParseException | Binder.BindException e) {
                    throw new RuntimeException("An error occurred during JSON parsing", wrap(e));
                } catch (RuntimeException e) {
                    throw new RuntimeException("An error occurred during JSON parsing", e);
                }
            }
            if (needsContext) {
                args[index] = context;
            }
            Object result = invoke(method, instance, args, direct);
            if (outputType == null) {
                return JSON_NULL;
            }
            try {
                return Binder.toJson(result);
            } catch (Binder.BindException e) {
                throw new RuntimeException("An error occurred during JSON serialization of response", wrap(e));
            } catch (RuntimeException e) {
                throw new RuntimeException("An error occurred during JSON serialization of response", e);
            }
        }

        /** The (de)serializer's problem as a standard exception type, like AWS's UncheckedIOException. */
        private static Throwable wrap(Exception e) {
            UncheckedIOException wrapped = new UncheckedIOException(new IOException(e.getMessage()));
            wrapped.setStackTrace(new StackTraceElement[0]);
            wrapped.getCause().setStackTrace(new StackTraceElement[0]);
            return wrapped;
        }
    }
}
