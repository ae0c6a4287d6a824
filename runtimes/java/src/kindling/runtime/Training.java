package kindling.runtime;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;

/**
 * The class-loading workload for a CDS archive ({@code --cds-training}).
 *
 * <p>Run once per JDK with {@code -XX:ArchiveClassesAtExit=<file>}: it goes through what a cold
 * start does, in this process and without a real platform: an in-process Runtime API on a
 * loopback port, a handler class loaded by a function class loader from a temporary task root
 * (the bytes of {@link Handler}), two invocations (a result and an exception), JSON and POJO
 * binding, proxies and error formatting. The JVM then writes every class it loaded into the
 * archive, and later starts map them instead of parsing and verifying them again.
 */
final class Training {
    /** Written reflectively, as the runtime writes LambdaRuntime's logger field. */
    private static volatile Object slot;

    private Training() {}

    /** The event and result types of the training handler. */
    public static final class Event {
        public String name;
        public int count;
        public List<String> tags;
        private Map<String, Object> extra;

        public void setExtra(Map<String, Object> extra) {
            this.extra = extra;
        }

        public Map<String, Object> getExtra() {
            return extra;
        }
    }

    public static final class Result {
        private final String greeting;
        private final long total;

        public Result(String greeting, long total) {
            this.greeting = greeting;
            this.total = total;
        }

        public String getGreeting() {
            return greeting;
        }

        public long getTotal() {
            return total;
        }
    }

    /** Interface calls shaped like RequestHandler's and RequestStreamHandler's handleRequest. */
    public interface TwoArguments {
        Object call(Object first, Object second);
    }

    public interface ThreeArgumentsVoid {
        void call(Object first, Object second, Object third);
    }

    /**
     * Reflective calls of the shapes the runtime makes (handler interface and method calls). On
     * JDK 18+ core reflection spins method-handle classes per shape at first use; once they were
     * used in the training run, the archive has them.
     */
    public static final class Shapes implements TwoArguments, ThreeArgumentsVoid {
        @Override
        public Object call(Object first, Object second) {
            return first;
        }

        @Override
        public void call(Object first, Object second, Object third) {
            // nothing: a stream handler writes to its output
        }

        public Object one(Object first) {
            return first;
        }

        public Object none() {
            return this;
        }

        public static Object still(Object first) {
            return first;
        }

        static void exercise() throws ReflectiveOperationException {
            Shapes shapes = Shapes.class.getConstructor().newInstance();
            for (int i = 0; i < 3; i++) {
                TwoArguments.class.getMethod("call", Object.class, Object.class).invoke(shapes, "a", "b");
                ThreeArgumentsVoid.class.getMethod("call", Object.class, Object.class, Object.class).invoke(shapes, "a", "b", "c");
                Shapes.class.getMethod("one", Object.class).invoke(shapes, "a");
                Shapes.class.getMethod("none").invoke(shapes);
                Shapes.class.getMethod("still", Object.class).invoke(null, "a");
            }
        }
    }

    /** The training handler, loaded from a copy of its class file like user code. */
    public static final class Handler {
        public Result handle(Event event) {
            if (event.count < 0) {
                throw new IllegalArgumentException("negative count: " + event.count);
            }
            return new Result("hello " + event.name, event.count + (event.tags == null ? 0 : event.tags.size()));
        }
    }

    static void run() {
        File root = null;
        try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            // Not Files.createTempDirectory: its SecureRandom would load the security providers.
            root = new File(System.getProperty("java.io.tmpdir"), "kindling-cds-training-" + ProcessHandle.current().pid());
            delete(root);
            if (!root.mkdirs()) {
                throw new IOException("cannot create " + root);
            }
            for (Class<?> type : new Class<?>[] {Handler.class, Event.class, Result.class}) {
                copyClassFile(type, root);
            }
            Thread platform = new Thread(new FakeApi(server), "cds-training-api");
            platform.setDaemon(true);
            platform.start();
            PrintStream out = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
            RuntimeApi api = new RuntimeApi("127.0.0.1:" + server.getLocalPort());
            Bootstrap.Loaded loaded = Bootstrap.initialise(api, Handler.class.getName() + "::handle", root.getPath(),
                    root.getPath(), out);
            for (int i = 0; i < 2; i++) {
                Bootstrap.handle(api, loaded, api.next());
            }
            UserApi.exerciseProxies();
            Shapes.exercise();
            java.lang.reflect.Field field = Training.class.getDeclaredField("slot");
            field.setAccessible(true);
            field.set(null, "trained");
            Json.write(Json.natural(Json.parse("{\"a\":[1,2.5,\"x\",null,true,{\"b\":-3e2}]}")));
        } catch (Exception e) {
            System.err.println("kindling java runtime: CDS training failed: " + e);
            System.exit(1);
        } finally {
            delete(root);
        }
        System.out.println("kindling java runtime: CDS training done");
    }

    private static void copyClassFile(Class<?> type, File root) throws IOException {
        String path = type.getName().replace('.', '/') + ".class";
        try (InputStream in = Training.class.getClassLoader().getResourceAsStream(path)) {
            if (in == null) {
                throw new IOException("class file not found: " + path);
            }
            File target = new File(root, path);
            target.getParentFile().mkdirs();
            Files.write(target.toPath(), in.readAllBytes());
        }
    }

    private static void delete(File file) {
        if (file == null) {
            return;
        }
        File[] children = file.listFiles();
        if (children != null) {
            for (File child : children) {
                delete(child);
            }
        }
        file.delete();
    }

    /** Serves two events on one keep-alive connection, accepts what is posted, then answers 500. */
    private static final class FakeApi implements Runnable {
        private final ServerSocket server;

        FakeApi(ServerSocket server) {
            this.server = server;
        }

        @Override
        public void run() {
            String[] events = {
                "{\"name\":\"cds\",\"count\":2,\"tags\":[\"a\",\"b\"],\"extra\":{\"k\":[1,2.5,null]}}",
                "{\"name\":\"cds\",\"count\":-1}",
            };
            try (Socket socket = server.accept()) {
                InputStream in = socket.getInputStream();
                OutputStream out = socket.getOutputStream();
                int served = 0;
                while (true) {
                    String head = readHead(in);
                    if (head == null) {
                        return;
                    }
                    int length = contentLength(head);
                    in.readNBytes(length);
                    String reply;
                    if (head.startsWith("GET") && served < events.length) {
                        byte[] body = events[served].getBytes(StandardCharsets.UTF_8);
                        served++;
                        reply = "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: training-" + served
                                + "\r\nLambda-Runtime-Deadline-Ms: " + (System.currentTimeMillis() + 60000)
                                + "\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:training"
                                + "\r\nLambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0"
                                + "\r\nContent-Type: application/json\r\nContent-Length: " + body.length + "\r\n\r\n";
                        out.write(reply.getBytes(StandardCharsets.UTF_8));
                        out.write(body);
                    } else if (head.startsWith("POST")) {
                        out.write("HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}".getBytes(StandardCharsets.UTF_8));
                    } else {
                        out.write("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                                .getBytes(StandardCharsets.UTF_8));
                        out.flush();
                        return;
                    }
                    out.flush();
                }
            } catch (IOException e) {
                // the training run ends either way
            }
        }

        private static String readHead(InputStream in) throws IOException {
            ByteArrayOutputStream head = new ByteArrayOutputStream();
            int matched = 0;
            int b;
            while ((b = in.read()) >= 0) {
                head.write(b);
                matched = (b == '\r' && (matched == 0 || matched == 2)) || (b == '\n' && (matched == 1 || matched == 3)) ? matched + 1 : 0;
                if (matched == 4) {
                    return head.toString(StandardCharsets.UTF_8);
                }
            }
            return null;
        }

        private static int contentLength(String head) {
            String lower = head.toLowerCase();
            int start = lower.indexOf("\r\ncontent-length:");
            if (start < 0) {
                return 0;
            }
            start += "\r\ncontent-length:".length();
            return Integer.parseInt(lower.substring(start, lower.indexOf('\r', start)).trim());
        }
    }
}
