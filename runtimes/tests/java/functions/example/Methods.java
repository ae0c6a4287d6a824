package example;

import com.amazonaws.services.lambda.runtime.Context;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.List;
import java.util.Map;

/** Class::method handlers with the signatures Lambda's Java runtime accepts. */
public class Methods {
    public String greet(String name, Context context) {
        return "hello " + name + " from " + context.getFunctionName();
    }

    public static int square(int x) {
        return x * x;
    }

    public void nothing(Map<String, Object> event) {
    }

    public String noArgs() {
        return "no args";
    }

    public String pick(Object event) {
        return "without context";
    }

    public String pick(Object event, Context context) {
        return "with context";
    }

    public int count(List<Order.Item> items) {
        int total = 0;
        for (Order.Item item : items) {
            total += item.count;
        }
        return total;
    }

    public void reverse(InputStream input, OutputStream output) throws IOException {
        byte[] bytes = input.readAllBytes();
        for (int i = bytes.length - 1; i >= 0; i--) {
            output.write(bytes[i]);
        }
    }

    public Map<String, Object> typed(Map<String, Integer> numbers) {
        int sum = 0;
        for (Integer value : numbers.values()) {
            sum += value;
        }
        return Map.of("sum", sum, "first_class", numbers.values().iterator().next().getClass().getSimpleName());
    }

    public double[] doubles(double[] values) {
        return values;
    }

    /** Whether a class can be loaded by the function's class loader. */
    public boolean visible(String className) {
        try {
            Class.forName(className, false, Methods.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }

    public String describeContext(Object event, Context context) {
        return context.toString() + "|" + context.equals(context) + "|" + (context.hashCode() == System.identityHashCode(context))
                + "|" + (context.getLogger() != null) + "|proxy=" + java.lang.reflect.Proxy.isProxyClass(context.getClass());
    }

    /** An object graph Lambda's serializer refuses (a direct self-reference). */
    public static class Node {
        public String name = "loop";
        public Node self;
    }

    public Node cycle() {
        Node node = new Node();
        node.self = node;
        return node;
    }

    public Object raw(Object event) {
        if (event instanceof Map) {
            Object value = ((Map<?, ?>) event).get("value");
            return value == null ? "null" : value.getClass().getName();
        }
        return event == null ? "null" : event.getClass().getName();
    }
}
