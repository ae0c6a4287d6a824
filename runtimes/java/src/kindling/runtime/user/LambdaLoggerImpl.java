package kindling.runtime.user;

import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * LambdaLogger: text goes to stdout as is (no newline added); with a level it is prefixed
 * "[LEVEL] " and dropped below AWS_LAMBDA_LOG_LEVEL, as AWS's text-format logger does.
 */
public final class LambdaLoggerImpl implements LambdaLogger {
    private static final String[] LEVELS = {"UNDEFINED", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};

    private final PrintStream out;
    private final int minimum;

    public LambdaLoggerImpl(PrintStream out, int minimum) {
        this.out = out;
        this.minimum = minimum;
    }

    @Override
    public void log(String message) {
        write((message == null ? "null" : message).getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public void log(byte[] message) {
        write(message);
    }

    @Override
    public void log(String message, LogLevel level) {
        int rank = rank(level);
        if (rank > 0 && rank < minimum) {
            return;
        }
        String text = message == null ? "null" : message;
        write((rank > 0 ? "[" + level.name() + "] " + text : text).getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public void log(byte[] message, LogLevel level) {
        int rank = rank(level);
        if (rank > 0 && rank < minimum) {
            return;
        }
        write(message);
    }

    private static int rank(LogLevel level) {
        if (level == null) {
            return 0;
        }
        for (int i = 0; i < LEVELS.length; i++) {
            if (LEVELS[i].equals(level.name())) {
                return i;
            }
        }
        return 0;
    }

    private void write(byte[] bytes) {
        if (bytes == null) {
            bytes = new byte[] {'n', 'u', 'l', 'l'};
        }
        synchronized (out) {
            out.write(bytes, 0, bytes.length);
            out.flush();
        }
    }

    @Override
    public String toString() {
        return "LambdaLogger";
    }

    /** Creates instances from the runtime's side without reflection: {@code apply(new Object[] {...})}. */
    public static final class Factory implements java.util.function.Function<Object[], Object> {
        @Override
        public Object apply(Object[] a) {
            return new LambdaLoggerImpl((PrintStream) a[0], ((Integer) a[1]).intValue());
        }
    }
}
