package example;

import java.lang.management.ManagementFactory;
import java.util.LinkedHashMap;
import java.util.Map;

public class ToolOptions {
    public Map<String, Object> handle(Map<String, Object> event) {
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("property", System.getProperty("kindling.test.flag"));
        result.put("arguments", ManagementFactory.getRuntimeMXBean().getInputArguments());
        result.put("max_heap", Runtime.getRuntime().maxMemory());
        result.put("charset", java.nio.charset.Charset.defaultCharset().name());
        return result;
    }
}
