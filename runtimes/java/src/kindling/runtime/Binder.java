package kindling.runtime;

import java.io.File;
import java.lang.reflect.Array;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.RecordComponent;
import java.lang.reflect.Type;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.net.URI;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Calendar;
import java.util.Collection;
import java.util.Date;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.NavigableMap;
import java.util.NavigableSet;
import java.util.Optional;
import java.util.Queue;
import java.util.Set;
import java.util.SortedMap;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * Converts JSON trees ({@link Json}) to values of a declared Java type and Java values back to
 * JSON, following what Lambda's Java runtime does for {@code RequestHandler<I, O>} and POJO method
 * handlers (see {@link Bean} for how properties are found). Lenient in the same places as AWS's
 * configuration: scalars coerce ("42" to 42, 2.9 to 2 for ints), a single value is accepted where
 * an array is expected and a one-element array where a single value is, "" and [] become null
 * POJOs, unknown properties and unknown enum names are ignored, nulls for primitives become 0.
 * Output omits null POJO properties (keeps null map values and list items).
 */
final class Binder {
    private Binder() {}

    /** A value that cannot be converted; the message says what and why, as Jackson's do. */
    static final class BindException extends Exception {
        private static final long serialVersionUID = 1L;

        BindException(String message) {
            super(message);
        }

        BindException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    // ================================================================== JSON -> Java

    static Object fromJson(String text, Type type) throws Json.ParseException, BindException {
        return read(Json.parse(text), type, false);
    }

    static Object read(Object tree, Type type, boolean eventModel) throws BindException {
        Class<?> raw = Types.raw(type);
        if (raw == Object.class || raw == Number.class && !(tree instanceof Json.Num) && !(tree instanceof String)) {
            return Json.natural(tree);
        }
        if (raw == Void.class || raw == void.class) {
            return null;
        }
        if (tree == null) {
            if (raw.isPrimitive()) {
                return primitiveDefault(raw);
            }
            return raw == Optional.class ? Optional.empty() : null;
        }
        if (raw == String.class || raw == CharSequence.class) {
            return string(tree, raw);
        }
        if (raw.isPrimitive() || Number.class.isAssignableFrom(raw) || raw == Boolean.class || raw == Character.class) {
            return scalar(tree, raw);
        }
        if (Map.class.isAssignableFrom(raw)) {
            return map(tree, type, raw, eventModel);
        }
        if (raw == byte[].class) {
            return bytes(tree, raw);
        }
        if (raw.isArray()) {
            return array(tree, type, raw, eventModel);
        }
        if (Collection.class.isAssignableFrom(raw) || raw == Iterable.class) {
            return collection(tree, type, raw, eventModel);
        }
        if (raw.isEnum()) {
            return enumValue(tree, raw);
        }
        if (raw == Optional.class) {
            return Optional.ofNullable(read(tree, Types.argument(type, 0), eventModel));
        }
        if (raw == ByteBuffer.class) {
            return ByteBuffer.wrap(bytes(tree, raw));
        }
        if (TimeValues.handles(raw)) {
            return TimeValues.read(unwrapSingle(tree), raw, eventModel);
        }
        Object special = wellKnown(tree, raw);
        if (special != null) {
            return special;
        }
        return pojo(tree, type, raw, eventModel);
    }

    private static Object unwrapSingle(Object tree) {
        if (tree instanceof List && ((List<?>) tree).size() == 1) {
            return ((List<?>) tree).get(0);
        }
        return tree;
    }

    static String describeTree(Object tree) {
        if (tree instanceof Map) {
            return "Object value";
        }
        if (tree instanceof List) {
            return "Array value";
        }
        if (tree instanceof String) {
            return "String value (\"" + tree + "\")";
        }
        if (tree instanceof Boolean) {
            return "Boolean value (" + tree + ")";
        }
        if (tree instanceof Json.Num) {
            return ((Json.Num) tree).isIntegral() ? "Integer value (" + tree + ")" : "Floating-point value (" + tree + ")";
        }
        return "null value";
    }

    private static BindException cannot(Class<?> type, Object tree) {
        return new BindException("Cannot deserialize value of type `" + type.getName() + "` from " + describeTree(tree));
    }

    private static Object primitiveDefault(Class<?> type) {
        if (type == boolean.class) {
            return Boolean.FALSE;
        }
        if (type == char.class) {
            return Character.valueOf('\0');
        }
        if (type == long.class) {
            return Long.valueOf(0L);
        }
        if (type == double.class) {
            return Double.valueOf(0d);
        }
        if (type == float.class) {
            return Float.valueOf(0f);
        }
        if (type == short.class) {
            return Short.valueOf((short) 0);
        }
        if (type == byte.class) {
            return Byte.valueOf((byte) 0);
        }
        return Integer.valueOf(0);
    }

    private static Object string(Object tree, Class<?> type) throws BindException {
        if (tree instanceof String) {
            return tree;
        }
        if (tree instanceof Json.Num || tree instanceof Boolean) {
            return tree.toString();
        }
        if (tree instanceof List && ((List<?>) tree).size() == 1) {
            return read(((List<?>) tree).get(0), type, false);
        }
        throw cannot(type, tree);
    }

    private static Object scalar(Object tree, Class<?> type) throws BindException {
        if (tree instanceof List) {
            if (((List<?>) tree).size() == 1) {
                return scalar(((List<?>) tree).get(0), type);
            }
            throw cannot(type, tree);
        }
        if (tree == null) {
            return type.isPrimitive() ? primitiveDefault(type) : null;
        }
        if (type == boolean.class || type == Boolean.class) {
            if (tree instanceof Boolean) {
                return tree;
            }
            if (tree instanceof String) {
                String text = ((String) tree).trim();
                if (text.equalsIgnoreCase("true")) {
                    return Boolean.TRUE;
                }
                if (text.equalsIgnoreCase("false")) {
                    return Boolean.FALSE;
                }
                if (text.isEmpty() || text.equals("null")) {
                    return type.isPrimitive() ? Boolean.FALSE : null;
                }
            }
            if (tree instanceof Json.Num && ((Json.Num) tree).isIntegral()) {
                return Boolean.valueOf(((Json.Num) tree).intValue() != 0);
            }
            throw cannot(type, tree);
        }
        if (type == char.class || type == Character.class) {
            if (tree instanceof String && ((String) tree).length() == 1) {
                return Character.valueOf(((String) tree).charAt(0));
            }
            if (tree instanceof String && ((String) tree).isEmpty()) {
                return type.isPrimitive() ? Character.valueOf('\0') : null;
            }
            if (tree instanceof Json.Num && ((Json.Num) tree).isIntegral()) {
                return Character.valueOf((char) ((Json.Num) tree).intValue());
            }
            throw cannot(type, tree);
        }
        Json.Num number;
        if (tree instanceof Json.Num) {
            number = (Json.Num) tree;
        } else if (tree instanceof String) {
            String text = ((String) tree).trim();
            if (text.isEmpty() || text.equals("null")) {
                return type.isPrimitive() ? primitiveDefault(type) : null;
            }
            try {
                Object parsed = Json.parse(text);
                if (!(parsed instanceof Json.Num)) {
                    throw cannot(type, tree);
                }
                number = (Json.Num) parsed;
            } catch (Json.ParseException e) {
                throw new BindException("Cannot deserialize value of type `" + type.getName() + "` from String \"" + text
                        + "\": not a valid number");
            }
        } else {
            throw cannot(type, tree);
        }
        return number(number, type);
    }

    private static Object number(Json.Num number, Class<?> type) throws BindException {
        try {
            if (type == int.class || type == Integer.class) {
                return Integer.valueOf((int) integral(number, Integer.MIN_VALUE, Integer.MAX_VALUE, "int"));
            }
            if (type == long.class || type == Long.class) {
                return Long.valueOf(integral(number, Long.MIN_VALUE, Long.MAX_VALUE, "long"));
            }
            if (type == double.class || type == Double.class) {
                return Double.valueOf(number.doubleValue());
            }
            if (type == float.class || type == Float.class) {
                return Float.valueOf(number.floatValue());
            }
            if (type == short.class || type == Short.class) {
                return Short.valueOf((short) integral(number, Short.MIN_VALUE, Short.MAX_VALUE, "short"));
            }
            if (type == byte.class || type == Byte.class) {
                return Byte.valueOf((byte) integral(number, Byte.MIN_VALUE, 255, "byte"));
            }
            if (type == BigDecimal.class) {
                return number.bigDecimal();
            }
            if (type == BigInteger.class) {
                return number.isIntegral() ? new BigInteger(number.text) : number.bigDecimal().toBigInteger();
            }
            if (type == Number.class) {
                return number.natural();
            }
            if (type == java.util.concurrent.atomic.AtomicInteger.class) {
                return new java.util.concurrent.atomic.AtomicInteger((int) integral(number, Integer.MIN_VALUE, Integer.MAX_VALUE, "int"));
            }
            if (type == java.util.concurrent.atomic.AtomicLong.class) {
                return new java.util.concurrent.atomic.AtomicLong(integral(number, Long.MIN_VALUE, Long.MAX_VALUE, "long"));
            }
        } catch (NumberFormatException e) {
            throw new BindException("Cannot deserialize value of type `" + type.getName() + "` from number " + number);
        }
        throw cannot(type, number);
    }

    /** An integral value in [min, max]; fractions are truncated as Jackson does (ACCEPT_FLOAT_AS_INT). */
    private static long integral(Json.Num number, long min, long max, String name) throws BindException {
        BigInteger value = number.isIntegral() ? new BigInteger(number.text) : number.bigDecimal().toBigInteger();
        if (value.compareTo(BigInteger.valueOf(min)) < 0 || value.compareTo(BigInteger.valueOf(max)) > 0) {
            throw new BindException("Numeric value (" + number + ") out of range of " + name);
        }
        return value.longValue();
    }

    private static Object enumValue(Object tree, Class<?> type) throws BindException {
        Object[] constants = type.getEnumConstants();
        tree = unwrapSingle(tree);
        if (tree instanceof String) {
            for (Object constant : constants) {
                if (((Enum<?>) constant).name().equals(tree)) {
                    return constant;
                }
            }
            return null; // READ_UNKNOWN_ENUM_VALUES_AS_NULL
        }
        if (tree instanceof Json.Num && ((Json.Num) tree).isIntegral()) {
            int index = ((Json.Num) tree).intValue();
            return index >= 0 && index < constants.length ? constants[index] : null;
        }
        throw cannot(type, tree);
    }

    private static byte[] bytes(Object tree, Class<?> type) throws BindException {
        if (tree instanceof String) {
            try {
                // Standard alphabet; line breaks (MIME style) are tolerated, other characters are not.
                return Base64.getDecoder().decode(((String) tree).replace("\r", "").replace("\n", ""));
            } catch (IllegalArgumentException e) {
                throw new BindException("Cannot deserialize value of type `" + type.getName() + "` from String: "
                        + "not valid Base64: " + e.getMessage());
            }
        }
        if (tree instanceof List) {
            List<?> items = (List<?>) tree;
            byte[] result = new byte[items.size()];
            for (int i = 0; i < result.length; i++) {
                result[i] = ((Byte) scalar(items.get(i), byte.class)).byteValue();
            }
            return result;
        }
        throw cannot(type, tree);
    }

    private static Object array(Object tree, Type type, Class<?> raw, boolean eventModel) throws BindException {
        Type component = Types.component(type);
        List<?> items = tree instanceof List ? (List<?>) tree : java.util.Collections.singletonList(tree);
        Object result = Array.newInstance(raw.getComponentType(), items.size());
        for (int i = 0; i < items.size(); i++) {
            Array.set(result, i, read(items.get(i), component, eventModel));
        }
        return result;
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static Object collection(Object tree, Type type, Class<?> raw, boolean eventModel) throws BindException {
        Collection result = (Collection) instantiate(raw, collectionImplementation(raw));
        Type element = Types.argument(type, 0);
        if (tree instanceof List) {
            for (Object item : (List<?>) tree) {
                result.add(read(item, element, eventModel));
            }
        } else {
            result.add(read(tree, element, eventModel)); // ACCEPT_SINGLE_VALUE_AS_ARRAY
        }
        return result;
    }

    private static Class<?> collectionImplementation(Class<?> raw) {
        if (SortedSet.class.isAssignableFrom(raw) || NavigableSet.class.isAssignableFrom(raw)) {
            return TreeSet.class;
        }
        if (Set.class.isAssignableFrom(raw)) {
            return HashSet.class;
        }
        if (Queue.class.isAssignableFrom(raw)) {
            return ArrayDeque.class;
        }
        return ArrayList.class;
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static Object map(Object tree, Type type, Class<?> raw, boolean eventModel) throws BindException {
        tree = unwrapSingle(tree);
        if (tree instanceof String && ((String) tree).isEmpty()) {
            return null;
        }
        if (!(tree instanceof Map)) {
            throw cannot(raw, tree);
        }
        Class<?> implementation = LinkedHashMap.class;
        if (SortedMap.class.isAssignableFrom(raw) || NavigableMap.class.isAssignableFrom(raw)) {
            implementation = TreeMap.class;
        } else if (ConcurrentMap.class.isAssignableFrom(raw)) {
            implementation = ConcurrentHashMap.class;
        }
        Map result = (Map) instantiate(raw, implementation);
        Type keyType = Types.argument(type, 0);
        Type valueType = Types.argument(type, 1);
        Class<?> keyClass = Types.raw(keyType);
        for (Map.Entry<String, Object> entry : ((Map<String, Object>) tree).entrySet()) {
            Object key = entry.getKey();
            if (keyClass != Object.class && keyClass != String.class && keyClass != CharSequence.class) {
                key = read(entry.getKey(), keyType, eventModel);
                if (key == null) {
                    continue; // an unknown enum name
                }
            }
            Object value = read(entry.getValue(), valueType, eventModel);
            if (value == null && result instanceof ConcurrentMap) {
                continue;
            }
            result.put(key, value);
        }
        return result;
    }

    /** An instance of `declared`: itself when concrete, else the given implementation. */
    private static Object instantiate(Class<?> declared, Class<?> implementation) throws BindException {
        Class<?> concrete = declared.isInterface() || Modifier.isAbstract(declared.getModifiers()) ? implementation : declared;
        if (!declared.isAssignableFrom(concrete)) {
            throw new BindException("Cannot construct instance of `" + declared.getName() + "`");
        }
        try {
            Constructor<?> constructor = concrete.getDeclaredConstructor();
            constructor.setAccessible(true);
            return constructor.newInstance();
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new BindException("Cannot construct instance of `" + declared.getName() + "`: " + e, e);
        }
    }

    private static Object wellKnown(Object tree, Class<?> raw) throws BindException {
        if (raw == UUID.class || raw == URI.class || raw == URL.class || raw == Locale.class || raw == File.class
                || raw == Path.class || raw == StringBuilder.class) {
            tree = unwrapSingle(tree);
            if (!(tree instanceof String)) {
                throw cannot(raw, tree);
            }
            String text = (String) tree;
            try {
                if (raw == UUID.class) {
                    return UUID.fromString(text);
                }
                if (raw == URI.class) {
                    return URI.create(text);
                }
                if (raw == URL.class) {
                    return URI.create(text).toURL();
                }
                if (raw == Locale.class) {
                    return Locale.forLanguageTag(text.replace('_', '-'));
                }
                if (raw == File.class) {
                    return new File(text);
                }
                if (raw == Path.class) {
                    return text.startsWith("file:") ? Paths.get(URI.create(text)) : Paths.get(text);
                }
                return new StringBuilder(text);
            } catch (IllegalArgumentException | java.net.MalformedURLException e) {
                throw new BindException("Cannot deserialize value of type `" + raw.getName() + "` from String \"" + text
                        + "\": " + e.getMessage());
            }
        }
        return null;
    }

    @SuppressWarnings("unchecked")
    private static Object pojo(Object tree, Type type, Class<?> raw, boolean parentIsEventModel) throws BindException {
        if (tree instanceof String && ((String) tree).isEmpty()) {
            return null; // ACCEPT_EMPTY_STRING_AS_NULL_OBJECT
        }
        if (tree instanceof List) {
            List<?> items = (List<?>) tree;
            if (items.isEmpty()) {
                return null; // ACCEPT_EMPTY_ARRAY_AS_NULL_OBJECT
            }
            if (items.size() == 1) {
                return pojo(items.get(0), type, raw, parentIsEventModel); // UNWRAP_SINGLE_VALUE_ARRAYS
            }
            throw cannot(raw, tree);
        }
        if (!(tree instanceof Map)) {
            if (tree instanceof String && (parentIsEventModel || Bean.isEventModel(raw) || raw.getName().startsWith("org.joda.time."))) {
                return fromString((String) tree, raw);
            }
            throw new BindException("Cannot construct instance of `" + raw.getName()
                    + "` (no Creators, like default constructor, exist): no suitable creator method found to deserialize from "
                    + describeTree(tree));
        }
        if (raw.isInterface() || Modifier.isAbstract(raw.getModifiers())) {
            throw new BindException("Cannot construct instance of `" + raw.getName()
                    + "` (no Creators, like default constructor, exist): abstract types either need to be mapped to concrete types,"
                    + " have custom deserializer, or contain additional type information");
        }
        Bean bean = Bean.of(raw);
        Map<String, Object> object = (Map<String, Object>) tree;
        Map<String, Type> bindings = Types.bindings(type);
        Constructor<?> constructor = bean.constructor();
        if (constructor == null) {
            throw new BindException("Cannot construct instance of `" + raw.getName()
                    + "` (no Creators, like default constructor, exist): cannot deserialize from Object value"
                    + " (no delegate- or property-based Creator)");
        }
        try {
            if (bean.isRecord()) {
                RecordComponent[] components = bean.components();
                Object[] args = new Object[components.length];
                for (int i = 0; i < components.length; i++) {
                    Type componentType = Types.resolve(components[i].getGenericType(), bindings);
                    args[i] = read(object.get(components[i].getName()), componentType, bean.eventModel);
                }
                return constructor.newInstance(args);
            }
            Object instance = constructor.newInstance();
            for (Map.Entry<String, Object> entry : object.entrySet()) {
                Bean.Writer writer = bean.writer(entry.getKey());
                if (writer == null) {
                    continue; // FAIL_ON_UNKNOWN_PROPERTIES is off
                }
                Object value;
                try {
                    value = read(entry.getValue(), Types.resolve(writer.type, bindings), bean.eventModel);
                } catch (BindException e) {
                    throw new BindException(e.getMessage() + " (through reference chain: " + raw.getName() + "[\"" + entry.getKey()
                            + "\"])", e.getCause());
                }
                writer.set(instance, value);
            }
            return instance;
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            throw new BindException("Cannot construct instance of `" + raw.getName() + "`, problem: " + cause.getMessage(), cause);
        } catch (ReflectiveOperationException | IllegalArgumentException e) {
            throw new BindException("Cannot deserialize value of type `" + raw.getName() + "`: " + e.getMessage(), e);
        }
    }

    /** For event model and Joda types: a static parse(String) or a constructor taking a String (or Object). */
    private static Object fromString(String text, Class<?> raw) throws BindException {
        try {
            for (Method method : raw.getMethods()) {
                if (method.getName().equals("parse") && Modifier.isStatic(method.getModifiers()) && method.getParameterCount() == 1
                        && method.getParameterTypes()[0].isAssignableFrom(String.class) && raw.isAssignableFrom(method.getReturnType())) {
                    return method.invoke(null, text);
                }
            }
            for (Class<?> parameter : new Class<?>[] {String.class, Object.class}) {
                try {
                    return raw.getConstructor(parameter).newInstance(text);
                } catch (NoSuchMethodException e) {
                    // try the next form
                }
            }
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            throw new BindException("Cannot deserialize value of type `" + raw.getName() + "` from String \"" + text + "\": "
                    + cause.getMessage(), cause);
        } catch (ReflectiveOperationException e) {
            throw new BindException("Cannot deserialize value of type `" + raw.getName() + "`: " + e.getMessage(), e);
        }
        throw cannot(raw, text);
    }

    // ================================================================== Java -> JSON

    /** The JSON text of `value` (UTF-8 bytes). */
    static byte[] toJson(Object value) throws BindException {
        StringBuilder out = new StringBuilder(128);
        write(out, value, null, 0);
        return out.toString().getBytes(StandardCharsets.UTF_8);
    }

    private static void write(StringBuilder out, Object value, Object parent, int depth) throws BindException {
        if (depth > Json.MAX_DEPTH) {
            throw new BindException("Infinite recursion (StackOverflowError)");
        }
        if (value == null) {
            out.append("null");
        } else if (value instanceof String) {
            Json.quote(out, (String) value);
        } else if (value instanceof Boolean) {
            out.append(((Boolean) value).booleanValue() ? "true" : "false");
        } else if (value instanceof Number) {
            Json.number(out, (Number) value);
        } else if (value instanceof Character || value instanceof CharSequence) {
            Json.quote(out, value.toString());
        } else if (value instanceof Map) {
            writeMap(out, (Map<?, ?>) value, depth);
        } else if (value instanceof Iterable) {
            out.append('[');
            Iterator<?> items = ((Iterable<?>) value).iterator();
            boolean first = true;
            while (items.hasNext()) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                write(out, items.next(), value, depth + 1);
            }
            out.append(']');
        } else if (value.getClass().isArray()) {
            writeArray(out, value, depth);
        } else if (value instanceof Enum) {
            Json.quote(out, ((Enum<?>) value).name());
        } else if (value instanceof Optional) {
            write(out, ((Optional<?>) value).orElse(null), parent, depth + 1);
        } else if (value instanceof ByteBuffer) {
            ByteBuffer buffer = ((ByteBuffer) value).duplicate();
            byte[] bytes = new byte[buffer.remaining()];
            buffer.get(bytes);
            Json.quote(out, Base64.getEncoder().encodeToString(bytes));
        } else if ((value instanceof Date || value instanceof Calendar || value instanceof java.time.temporal.TemporalAccessor
                || value instanceof java.time.Duration) && TimeValues.write(out, value)) {
            return;
        } else if (value instanceof UUID || value instanceof URI || value instanceof URL || value instanceof Locale) {
            Json.quote(out, value instanceof Locale ? value.toString() : value.toString());
        } else if (value instanceof File) {
            Json.quote(out, ((File) value).getAbsolutePath());
        } else if (value instanceof Path) {
            Json.quote(out, ((Path) value).toUri().toString());
        } else if (value instanceof Class) {
            Json.quote(out, ((Class<?>) value).getName());
        } else {
            writeBean(out, value, depth);
        }
    }

    private static void writeMap(StringBuilder out, Map<?, ?> map, int depth) throws BindException {
        out.append('{');
        boolean first = true;
        for (Map.Entry<?, ?> entry : map.entrySet()) {
            Object key = entry.getKey();
            if (key == null) {
                throw new BindException("Null key for a Map not allowed in JSON (use a converting NullKeySerializer?)");
            }
            if (!first) {
                out.append(',');
            }
            first = false;
            Json.quote(out, key instanceof Enum ? ((Enum<?>) key).name() : key.toString());
            out.append(':');
            write(out, entry.getValue(), map, depth + 1);
        }
        out.append('}');
    }

    private static void writeArray(StringBuilder out, Object array, int depth) throws BindException {
        if (array instanceof byte[]) {
            Json.quote(out, Base64.getEncoder().encodeToString((byte[]) array));
            return;
        }
        if (array instanceof char[]) {
            Json.quote(out, new String((char[]) array));
            return;
        }
        out.append('[');
        int length = Array.getLength(array);
        for (int i = 0; i < length; i++) {
            if (i > 0) {
                out.append(',');
            }
            write(out, Array.get(array, i), array, depth + 1);
        }
        out.append(']');
    }

    private static void writeBean(StringBuilder out, Object value, int depth) throws BindException {
        Bean bean = Bean.of(value.getClass());
        out.append('{');
        boolean first = true;
        for (Bean.Reader reader : bean.readers) {
            Object property;
            try {
                property = reader.get(value);
            } catch (InvocationTargetException e) {
                Throwable cause = e.getCause() == null ? e : e.getCause();
                throw new BindException(cause + " (through reference chain: " + bean.type.getName() + "[\"" + reader.name + "\"])", cause);
            } catch (IllegalAccessException e) {
                throw new BindException(e.getMessage(), e);
            }
            if (property == null || property instanceof Optional && !((Optional<?>) property).isPresent()) {
                continue; // Include.NON_NULL
            }
            if (property == value) {
                throw new BindException("Direct self-reference leading to cycle (through reference chain: " + bean.type.getName()
                        + "[\"" + reader.name + "\"])");
            }
            if (!first) {
                out.append(',');
            }
            first = false;
            Json.quote(out, reader.name);
            out.append(':');
            write(out, property, value, depth + 1);
        }
        out.append('}');
    }
}
