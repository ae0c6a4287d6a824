package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/** Reads the raw event bytes and writes the response bytes itself. */
public class StreamUpper implements RequestStreamHandler {
    @Override
    public void handleRequest(InputStream input, OutputStream output, Context context) throws IOException {
        String text = new String(input.readAllBytes(), StandardCharsets.UTF_8);
        output.write(("{\"upper\":" + text.toUpperCase() + ",\"request\":\"" + context.getAwsRequestId() + "\"}")
                .getBytes(StandardCharsets.UTF_8));
    }
}
