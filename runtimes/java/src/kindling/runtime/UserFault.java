package kindling.runtime;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * A problem with the function itself (bad handler string, class not found, no usable method...)
 * as Lambda's Java runtime reports it: posted as {"errorMessage", "errorType"} without a stack
 * trace, with the header {@code Lambda-Runtime-Function-Error-Type: Runtime.BadFunctionCode}.
 * Fatal faults (a failing static initializer or constructor) end the init phase; the others are
 * reported by every invocation while the runtime keeps running, exactly as on AWS.
 */
final class UserFault extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private static final String OWN_PACKAGE = "kindling.runtime.";

    final String msg;
    /** Exception class name, or null. */
    final String exception;
    /** Printed stack trace, or null. */
    final String trace;
    final boolean fatal;

    UserFault(String msg, String exception, String trace, boolean fatal) {
        super(msg, null, false, false);
        this.msg = msg;
        this.exception = exception;
        this.trace = trace;
        this.fatal = fatal;
    }

    static UserFault of(String msg) {
        return new UserFault(msg, null, null, false);
    }

    static UserFault of(Throwable t, boolean fatal) {
        if (t instanceof UserFault) {
            return (UserFault) t;
        }
        return new UserFault(messageOf(t), t.getClass().getName(), trace(t), fatal);
    }

    /** Faults while loading or initializing the handler class: fatal (an init error). */
    static UserFault loadingClass(Throwable t, String className) {
        String message = "Error loading class " + className + (t.getMessage() == null ? "" : ": " + t.getMessage());
        return new UserFault(message, t.getClass().getName(), trace(t), true);
    }

    static UserFault classNotFound(Throwable t, String className) {
        return new UserFault("Class not found: " + className, t.getClass().getName(), trace(t), false);
    }

    /** What the runtime logs for this fault: "msg: exception" and the trace, or just "msg". */
    String reportable() {
        if (exception != null || trace != null) {
            return msg + ": " + (exception == null ? "" : exception) + "\n" + (trace == null ? "" : trace) + "\n";
        }
        return msg + "\n";
    }

    static String messageOf(Throwable t) {
        String message = t.getLocalizedMessage();
        return message == null ? t.getClass().getName() : message;
    }

    /** The printed stack trace, after removing this runtime's frames. */
    static String trace(Throwable t) {
        filterStackTrace(t, false);
        StringWriter text = new StringWriter();
        t.printStackTrace(new PrintWriter(text));
        return text.toString();
    }

    /**
     * Cuts every stack trace in `t` (causes and suppressed exceptions included) at the first frame
     * of this runtime. With `dropReflection`, the reflection frames just above that point go too:
     * they come from calling an interface method reflectively, which AWS's runtime calls directly.
     */
    static <T extends Throwable> T filterStackTrace(T t, boolean dropReflection) {
        filter(t, dropReflection, new IdentityHashMap<Throwable, Boolean>());
        return t;
    }

    private static void filter(Throwable t, boolean dropReflection, Map<Throwable, Boolean> seen) {
        if (t == null || seen.containsKey(t)) {
            return;
        }
        seen.put(t, Boolean.TRUE);
        StackTraceElement[] frames = t.getStackTrace();
        for (int i = 0; i < frames.length; i++) {
            if (frames[i].getClassName().startsWith(OWN_PACKAGE)) {
                int end = i;
                while (dropReflection && end > 0 && isReflection(frames[end - 1])) {
                    end--;
                }
                StackTraceElement[] kept = new StackTraceElement[end];
                System.arraycopy(frames, 0, kept, 0, end);
                t.setStackTrace(kept);
                break;
            }
        }
        filter(t.getCause(), dropReflection, seen);
        for (Throwable suppressed : t.getSuppressed()) {
            filter(suppressed, dropReflection, seen);
        }
    }

    private static boolean isReflection(StackTraceElement frame) {
        String name = frame.getClassName();
        return name.startsWith("jdk.internal.reflect.") || name.equals("java.lang.reflect.Method");
    }

    /** The error document posted to the Runtime API. */
    String payload() {
        StringBuilder out = new StringBuilder(64 + msg.length());
        out.append("{\"errorMessage\":");
        Json.quote(out, msg);
        if (exception != null) {
            out.append(",\"errorType\":");
            Json.quote(out, exception);
        }
        return out.append('}').toString();
    }

    /** The error document for an exception thrown by the function: message, class and stack frames. */
    static String payload(Throwable t) {
        StringBuilder out = new StringBuilder(256);
        out.append("{\"errorMessage\":");
        Json.quote(out, messageOf(t));
        out.append(",\"errorType\":");
        Json.quote(out, t.getClass().getName());
        out.append(",\"stackTrace\":[");
        StackTraceElement[] frames = t.getStackTrace();
        for (int i = 0; i < frames.length; i++) {
            if (i > 0) {
                out.append(',');
            }
            Json.quote(out, frames[i].toString());
        }
        return out.append("]}").toString();
    }
}
