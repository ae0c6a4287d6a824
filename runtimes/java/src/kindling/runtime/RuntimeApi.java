package kindling.runtime;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * The Lambda Runtime API (2018-06-01) over one keep-alive HTTP/1.1 connection.
 *
 * <p>A hand-written client over a plain socket: {@code HttpURLConnection} costs tens of
 * milliseconds of class loading at start-up and applies its own timeouts and retries. GET /next
 * is a long poll that may block for hours, so the socket never times out. A request that fails on
 * a reused connection before any response byte arrived (the server dropped the idle connection)
 * is sent once more on a fresh connection.
 */
final class RuntimeApi {
    static final String ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type";
    private static final String BASE = "/2018-06-01/runtime";

    private final HttpConnection connection;

    /** The Runtime API is unreachable or answered in a way the runtime cannot continue from. */
    static final class ApiException extends Exception {
        private static final long serialVersionUID = 1L;

        ApiException(String message) {
            super(message);
        }

        ApiException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** One event from GET /next. */
    static final class Invocation {
        final String requestId;
        final long deadlineMs;
        final String invokedFunctionArn;
        final String traceId;
        final String clientContext;
        final String cognitoIdentity;
        final String tenantId;
        final byte[] body;

        Invocation(Map<String, String> headers, byte[] body) {
            this.requestId = headers.get("lambda-runtime-aws-request-id");
            this.deadlineMs = parseLong(headers.get("lambda-runtime-deadline-ms"));
            this.invokedFunctionArn = headers.get("lambda-runtime-invoked-function-arn");
            this.traceId = emptyToNull(headers.get("lambda-runtime-trace-id"));
            this.clientContext = emptyToNull(headers.get("lambda-runtime-client-context"));
            this.cognitoIdentity = emptyToNull(headers.get("lambda-runtime-cognito-identity"));
            this.tenantId = emptyToNull(headers.get("lambda-runtime-aws-tenant-id"));
            this.body = body;
        }

        private static long parseLong(String text) {
            try {
                return text == null ? 0L : Long.parseLong(text.trim());
            } catch (NumberFormatException e) {
                return 0L;
            }
        }

        private static String emptyToNull(String text) {
            return text == null || text.isEmpty() ? null : text;
        }
    }

    RuntimeApi(String address) throws ApiException {
        int colon = address.lastIndexOf(':');
        if (colon <= 0 || colon == address.length() - 1) {
            throw new ApiException("AWS_LAMBDA_RUNTIME_API must be host:port, got \"" + address + "\"");
        }
        String host = address.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port;
        try {
            port = Integer.parseInt(address.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new ApiException("AWS_LAMBDA_RUNTIME_API must be host:port, got \"" + address + "\"");
        }
        this.connection = new HttpConnection(host, port);
    }

    Invocation next() throws ApiException {
        HttpConnection.Response response = connection.request("GET", BASE + "/invocation/next", null, null);
        if (response.status != 200) {
            throw new ApiException(describe("GET /invocation/next", response));
        }
        Invocation invocation = new Invocation(response.headers, response.body);
        if (invocation.requestId == null || invocation.requestId.isEmpty()) {
            throw new ApiException("GET /invocation/next answered without Lambda-Runtime-Aws-Request-Id");
        }
        return invocation;
    }

    void postResponse(String requestId, byte[] body) throws ApiException {
        post(BASE + "/invocation/" + requestId + "/response", null, body);
    }

    void postError(String requestId, String errorType, String payload) throws ApiException {
        post(BASE + "/invocation/" + requestId + "/error", errorType, payload.getBytes(StandardCharsets.UTF_8));
    }

    void postInitError(String errorType, String payload) throws ApiException {
        post(BASE + "/init/error", errorType, payload.getBytes(StandardCharsets.UTF_8));
    }

    private void post(String path, String errorType, byte[] body) throws ApiException {
        HttpConnection.Response response = connection.request("POST", path, errorType, body);
        if (response.status >= 500) {
            throw new ApiException(describe("POST " + path, response));
        }
        if (response.status != 202 && response.status != 200) {
            // 4xx: too large, stale request id... The invocation is lost; the runtime goes on.
            System.err.println("kindling java runtime: " + describe("POST " + path, response));
        }
    }

    private static String describe(String what, HttpConnection.Response response) {
        int length = Math.min(response.body.length, 1000);
        return what + " answered HTTP " + response.status + ": " + new String(response.body, 0, length, StandardCharsets.UTF_8);
    }

    /** A minimal blocking HTTP/1.1 client for one host; no timeouts, TCP_NODELAY on. */
    static final class HttpConnection {
        private static final String USER_AGENT = "kindling-java-runtime/1 (java " + System.getProperty("java.version") + ")";
        private final String host;
        private final int port;
        private final String hostHeader;
        private Socket socket;
        private InputStream in;
        private OutputStream out;
        private final byte[] buffer = new byte[65536];
        private int position;
        private int limit;
        private boolean received;

        static final class Response {
            final int status;
            final Map<String, String> headers;
            final byte[] body;

            Response(int status, Map<String, String> headers, byte[] body) {
                this.status = status;
                this.headers = headers;
                this.body = body;
            }
        }

        /** A reused connection died before any response byte arrived. */
        private static final class StaleConnection extends IOException {
            private static final long serialVersionUID = 1L;

            StaleConnection() {
                super("connection closed by the Runtime API");
            }
        }

        HttpConnection(String host, int port) {
            this.host = host;
            this.port = port;
            this.hostHeader = (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
        }

        Response request(String method, String path, String errorType, byte[] body) throws ApiException {
            boolean reused = socket != null;
            try {
                if (!reused) {
                    connect();
                }
                return exchange(method, path, errorType, body);
            } catch (IOException first) {
                close();
                if (!reused || received) {
                    throw new ApiException(method + " " + path + " failed: " + first, first);
                }
            }
            try {
                connect();
                return exchange(method, path, errorType, body);
            } catch (IOException second) {
                close();
                throw new ApiException(method + " " + path + " failed: " + second, second);
            }
        }

        private void connect() throws IOException {
            Socket fresh = new Socket();
            try {
                fresh.setTcpNoDelay(true);
                fresh.connect(new InetSocketAddress(host, port));
            } catch (IOException e) {
                fresh.close();
                throw new IOException("cannot connect to the Runtime API at " + hostHeader + ": " + e.getMessage(), e);
            }
            socket = fresh;
            in = fresh.getInputStream();
            out = fresh.getOutputStream();
            position = 0;
            limit = 0;
        }

        private void close() {
            if (socket != null) {
                try {
                    socket.close();
                } catch (IOException ignored) {
                    // nothing left to do with it
                }
            }
            socket = null;
            in = null;
            out = null;
            position = 0;
            limit = 0;
        }

        private Response exchange(String method, String path, String errorType, byte[] body) throws IOException {
            received = false;
            StringBuilder head = new StringBuilder(256);
            head.append(method).append(' ').append(path).append(" HTTP/1.1\r\nHost: ").append(hostHeader)
                    .append("\r\nUser-Agent: ").append(USER_AGENT).append("\r\n");
            if (body != null) {
                head.append("Content-Type: application/json\r\nContent-Length: ").append(body.length).append("\r\n");
            }
            if (errorType != null) {
                head.append(ERROR_TYPE_HEADER).append(": ").append(headerSafe(errorType)).append("\r\n");
            }
            head.append("\r\n");
            byte[] headBytes = head.toString().getBytes(StandardCharsets.UTF_8);
            if (body != null && body.length <= 65536) {
                byte[] all = new byte[headBytes.length + body.length];
                System.arraycopy(headBytes, 0, all, 0, headBytes.length);
                System.arraycopy(body, 0, all, headBytes.length, body.length);
                out.write(all);
            } else {
                out.write(headBytes);
                if (body != null) {
                    out.write(body);
                }
            }
            out.flush();
            return readResponse(method);
        }

        private static String headerSafe(String value) {
            StringBuilder out = new StringBuilder(value.length());
            for (int i = 0; i < value.length(); i++) {
                char c = value.charAt(i);
                if (c >= ' ' && c != 127) {
                    out.append(c);
                }
            }
            return out.length() == 0 ? "Unhandled" : out.toString();
        }

        private Response readResponse(String method) throws IOException {
            int status;
            String version;
            Map<String, String> headers;
            while (true) {
                String line = readLine();
                int firstSpace = line.indexOf(' ');
                if (!line.startsWith("HTTP/") || firstSpace < 0 || line.length() < firstSpace + 4) {
                    throw new IOException("malformed HTTP status line: " + truncate(line));
                }
                version = line.substring(0, firstSpace);
                try {
                    status = Integer.parseInt(line.substring(firstSpace + 1, firstSpace + 4));
                } catch (NumberFormatException e) {
                    throw new IOException("malformed HTTP status line: " + truncate(line));
                }
                headers = readHeaders();
                if (status < 100 || status >= 200) {
                    break;
                }
            }
            byte[] body;
            boolean framed = true;
            String transferEncoding = headers.get("transfer-encoding");
            String contentLength = headers.get("content-length");
            if (method.equals("HEAD") || status == 204 || status == 304) {
                body = new byte[0];
            } else if (transferEncoding != null && transferEncoding.toLowerCase().contains("chunked")) {
                body = readChunked();
            } else if (contentLength != null) {
                int length;
                try {
                    length = Integer.parseInt(contentLength.trim());
                } catch (NumberFormatException e) {
                    throw new IOException("invalid Content-Length: " + contentLength);
                }
                body = readExact(length);
            } else {
                body = readToEnd();
                framed = false;
            }
            String connectionHeader = headers.get("connection");
            boolean closeAfter = !framed || (connectionHeader != null && connectionHeader.equalsIgnoreCase("close"))
                    || (version.equals("HTTP/1.0") && (connectionHeader == null || !connectionHeader.equalsIgnoreCase("keep-alive")));
            if (closeAfter) {
                close();
            }
            return new Response(status, headers, body);
        }

        private static String truncate(String text) {
            return text.length() > 100 ? text.substring(0, 100) : text;
        }

        private Map<String, String> readHeaders() throws IOException {
            Map<String, String> headers = new HashMap<String, String>();
            while (true) {
                String line = readLine();
                if (line.isEmpty()) {
                    return headers;
                }
                int colon = line.indexOf(':');
                if (colon <= 0) {
                    continue;
                }
                String name = line.substring(0, colon).trim().toLowerCase();
                String value = line.substring(colon + 1).trim();
                String previous = headers.get(name);
                headers.put(name, previous == null ? value : previous + ", " + value);
            }
        }

        private byte[] readChunked() throws IOException {
            ByteArrayOutputStream body = new ByteArrayOutputStream();
            while (true) {
                String sizeLine = readLine();
                int semicolon = sizeLine.indexOf(';');
                String sizeText = (semicolon >= 0 ? sizeLine.substring(0, semicolon) : sizeLine).trim();
                int size;
                try {
                    size = Integer.parseInt(sizeText, 16);
                } catch (NumberFormatException e) {
                    throw new IOException("malformed chunk size: " + truncate(sizeLine));
                }
                if (size == 0) {
                    while (!readLine().isEmpty()) {
                        // trailer fields
                    }
                    return body.toByteArray();
                }
                body.write(readExact(size));
                if (!readLine().isEmpty()) {
                    throw new IOException("malformed chunked body");
                }
            }
        }

        /** One header line, decoded as UTF-8 (client context and identity are JSON text). */
        private String readLine() throws IOException {
            ByteArrayOutputStream line = null;
            while (true) {
                for (int i = position; i < limit; i++) {
                    if (buffer[i] == '\n') {
                        int end = i > position && buffer[i - 1] == '\r' ? i - 1 : i;
                        String text;
                        if (line == null) {
                            text = new String(buffer, position, end - position, StandardCharsets.UTF_8);
                        } else {
                            line.write(buffer, position, i - position);
                            byte[] bytes = line.toByteArray();
                            int length = bytes.length - 1;
                            if (length > 0 && bytes[length - 1] == '\r') {
                                length--;
                            }
                            text = new String(bytes, 0, length, StandardCharsets.UTF_8);
                        }
                        position = i + 1;
                        return text;
                    }
                }
                if (line == null) {
                    line = new ByteArrayOutputStream();
                }
                line.write(buffer, position, limit - position);
                if (line.size() > 1 << 20) {
                    throw new IOException("HTTP header line longer than 1 MiB");
                }
                position = limit;
                fill();
            }
        }

        private byte[] readExact(int size) throws IOException {
            byte[] result = new byte[size];
            int have = Math.min(size, limit - position);
            System.arraycopy(buffer, position, result, 0, have);
            position += have;
            while (have < size) {
                int count = in.read(result, have, size - have);
                if (count < 0) {
                    throw new IOException("connection closed in the middle of a response body");
                }
                have += count;
            }
            return result;
        }

        private byte[] readToEnd() throws IOException {
            ByteArrayOutputStream body = new ByteArrayOutputStream();
            body.write(buffer, position, limit - position);
            position = limit;
            byte[] chunk = new byte[65536];
            int count;
            while ((count = in.read(chunk)) >= 0) {
                body.write(chunk, 0, count);
            }
            return body.toByteArray();
        }

        private void fill() throws IOException {
            position = 0;
            limit = 0;
            int count = in.read(buffer);
            if (count < 0) {
                if (!received) {
                    throw new StaleConnection();
                }
                throw new IOException("connection closed in the middle of a response");
            }
            received = true;
            limit = count;
        }
    }
}
