package kindling.runtime;

import java.lang.reflect.AccessibleObject;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.RecordComponent;
import java.lang.reflect.Type;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The JSON properties of a plain Java class, found the way Lambda's Java serializer (a Jackson
 * configured by AWS) finds them, without reading any annotations (AWS's copy of Jackson is
 * relocated, so the user's Jackson annotations are invisible to it too):
 *
 * <ul>
 *   <li>read from public {@code getX()} / {@code isX()} (boolean) methods and public fields;
 *   <li>written through {@code setX(v)} methods of any visibility and public fields;
 *   <li>names follow the JavaBeans rule ({@code getURL} is "URL", {@code getName} is "name");
 *   <li>order: fields in declaration order (superclass first), then getter-only properties;
 *   <li>a zero-argument constructor (any visibility) creates instances; records use their
 *       canonical constructor.
 * </ul>
 *
 * <p>For the event classes of {@code aws-lambda-java-events} (AWS maps their odd JSON names with
 * Jackson mix-ins: "Records", "eventSourceARN", "detail-type", "Sns", ...) property names also
 * match ignoring case, '-' and '_'.
 */
final class Bean {
    private static final Map<Class<?>, Bean> CACHE = new HashMap<Class<?>, Bean>();

    final Class<?> type;
    /** Properties to serialize, in output order. */
    final List<Reader> readers;
    private final Map<String, Writer> writers;
    private final Map<String, Writer> relaxedWriters;
    private final Constructor<?> constructor;
    private final RecordComponent[] components;
    /** True for AWS event model classes (relaxed names, Date numbers in seconds). */
    final boolean eventModel;

    /** How one property is read for serialization. */
    static final class Reader {
        final String name;
        final Method getter;
        final Field field;

        Reader(String name, Method getter, Field field) {
            this.name = name;
            this.getter = getter;
            this.field = field;
        }

        Object get(Object target) throws IllegalAccessException, InvocationTargetException {
            return getter != null ? getter.invoke(target) : field.get(target);
        }
    }

    /** How one property is set during deserialization. */
    static final class Writer {
        final String name;
        final Method setter;
        final Field field;
        final Type type;

        Writer(String name, Method setter, Field field) {
            this.name = name;
            this.setter = setter;
            this.field = field;
            this.type = setter != null ? setter.getGenericParameterTypes()[0] : field.getGenericType();
        }

        void set(Object target, Object value) throws IllegalAccessException, InvocationTargetException {
            if (setter != null) {
                setter.invoke(target, value);
            } else {
                field.set(target, value);
            }
        }
    }

    static synchronized Bean of(Class<?> type) {
        Bean bean = CACHE.get(type);
        if (bean == null) {
            bean = new Bean(type);
            CACHE.put(type, bean);
        }
        return bean;
    }

    static boolean isEventModel(Class<?> type) {
        String name = type.getName();
        return name.startsWith("com.amazonaws.services.lambda.runtime.events.")
                || name.startsWith("com.amazonaws.services.s3.event.")
                || name.startsWith("com.amazonaws.services.dynamodbv2.model.")
                || name.startsWith("com.amazonaws.services.kinesis.model.");
    }

    private Bean(Class<?> type) {
        this.type = type;
        this.eventModel = isEventModel(type);
        List<Class<?>> hierarchy = hierarchy(type);
        this.readers = findReaders(type, hierarchy);
        this.writers = findWriters(hierarchy);
        this.relaxedWriters = new HashMap<String, Writer>();
        if (eventModel) {
            for (Writer writer : writers.values()) {
                String key = relaxed(writer.name);
                if (!relaxedWriters.containsKey(key)) {
                    relaxedWriters.put(key, writer);
                }
            }
        }
        this.components = type.isRecord() ? type.getRecordComponents() : null;
        this.constructor = components == null ? noArgumentConstructor(type) : canonicalConstructor(type, components);
    }

    /** The class and its superclasses, topmost first, without Object. */
    private static List<Class<?>> hierarchy(Class<?> type) {
        List<Class<?>> result = new ArrayList<Class<?>>();
        for (Class<?> c = type; c != null && c != Object.class; c = c.getSuperclass()) {
            result.add(0, c);
        }
        return result;
    }

    private static List<Reader> findReaders(Class<?> type, List<Class<?>> hierarchy) {
        Map<String, Reader> found = new LinkedHashMap<String, Reader>();
        List<String> order = new ArrayList<String>();
        if (type.isRecord()) {
            for (RecordComponent component : type.getRecordComponents()) {
                Method accessor = component.getAccessor();
                accessible(accessor);
                found.put(component.getName(), new Reader(component.getName(), accessor, null));
            }
            return new ArrayList<Reader>(found.values());
        }
        for (Class<?> c : hierarchy) {
            for (Field field : c.getDeclaredFields()) {
                int modifiers = field.getModifiers();
                if (Modifier.isStatic(modifiers) || field.isSynthetic()) {
                    continue;
                }
                if (!order.contains(field.getName())) {
                    order.add(field.getName());
                }
                if (Modifier.isPublic(modifiers) && !Modifier.isTransient(modifiers) && accessible(field)) {
                    found.put(field.getName(), new Reader(field.getName(), null, field));
                }
            }
        }
        for (Class<?> c : hierarchy) {
            for (Method method : c.getDeclaredMethods()) {
                String name = getterProperty(method);
                if (name == null) {
                    continue;
                }
                Method callable = publicOverride(type, method);
                if (callable == null || !accessible(callable)) {
                    continue;
                }
                found.put(name, new Reader(name, callable, null));
                if (!order.contains(name)) {
                    order.add(name);
                }
            }
        }
        List<Reader> result = new ArrayList<Reader>();
        for (String name : order) {
            Reader reader = found.get(name);
            if (reader != null) {
                result.add(reader);
            }
        }
        return result;
    }

    /** The property a getter reads, or null when the method is not a getter. */
    private static String getterProperty(Method method) {
        int modifiers = method.getModifiers();
        if (!Modifier.isPublic(modifiers) || Modifier.isStatic(modifiers) || method.isSynthetic()
                || method.getParameterCount() != 0) {
            return null;
        }
        String name = method.getName();
        Class<?> returns = method.getReturnType();
        if (name.startsWith("get") && name.length() > 3 && returns != void.class && !name.equals("getClass")) {
            return decapitalize(name.substring(3));
        }
        if (name.startsWith("is") && name.length() > 2 && returns == boolean.class) {
            return decapitalize(name.substring(2));
        }
        return null;
    }

    /** The most specific public method with the same signature (the one the JVM dispatches to). */
    private static Method publicOverride(Class<?> type, Method method) {
        try {
            return type.getMethod(method.getName());
        } catch (NoSuchMethodException e) {
            return null;
        }
    }

    private static Map<String, Writer> findWriters(List<Class<?>> hierarchy) {
        Map<String, Writer> result = new HashMap<String, Writer>();
        // Most specific class first, so overriding setters win.
        for (int i = hierarchy.size() - 1; i >= 0; i--) {
            for (Method method : hierarchy.get(i).getDeclaredMethods()) {
                String name = method.getName();
                if (Modifier.isStatic(method.getModifiers()) || method.isSynthetic() || method.isBridge()
                        || method.getParameterCount() != 1 || !name.startsWith("set") || name.length() <= 3) {
                    continue;
                }
                String property = decapitalize(name.substring(3));
                if (!result.containsKey(property) && accessible(method)) {
                    result.put(property, new Writer(property, method, null));
                }
            }
        }
        for (int i = hierarchy.size() - 1; i >= 0; i--) {
            for (Field field : hierarchy.get(i).getDeclaredFields()) {
                int modifiers = field.getModifiers();
                if (Modifier.isStatic(modifiers) || Modifier.isTransient(modifiers) || !Modifier.isPublic(modifiers)
                        || field.isSynthetic()) {
                    continue;
                }
                if (!result.containsKey(field.getName()) && accessible(field)) {
                    result.put(field.getName(), new Writer(field.getName(), null, field));
                }
            }
        }
        return result;
    }

    private static Constructor<?> noArgumentConstructor(Class<?> type) {
        try {
            Constructor<?> constructor = type.getDeclaredConstructor();
            return accessible(constructor) ? constructor : null;
        } catch (NoSuchMethodException e) {
            return null;
        }
    }

    private static Constructor<?> canonicalConstructor(Class<?> type, RecordComponent[] components) {
        Class<?>[] types = new Class<?>[components.length];
        for (int i = 0; i < components.length; i++) {
            types[i] = components[i].getType();
        }
        try {
            Constructor<?> constructor = type.getDeclaredConstructor(types);
            return accessible(constructor) ? constructor : null;
        } catch (NoSuchMethodException e) {
            return null;
        }
    }

    private static boolean accessible(AccessibleObject member) {
        try {
            member.setAccessible(true);
            return true;
        } catch (RuntimeException e) { // InaccessibleObjectException: a class of a named module
            return false;
        }
    }

    /** JavaBeans decapitalization: "Name" -> "name", "URL" -> "URL", "X" -> "x". */
    static String decapitalize(String name) {
        if (name.isEmpty()) {
            return name;
        }
        if (name.length() > 1 && Character.isUpperCase(name.charAt(0)) && Character.isUpperCase(name.charAt(1))) {
            return name;
        }
        return Character.toLowerCase(name.charAt(0)) + name.substring(1);
    }

    private static String relaxed(String name) {
        StringBuilder out = new StringBuilder(name.length());
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (c != '-' && c != '_') {
                out.append(Character.toLowerCase(c));
            }
        }
        return out.toString();
    }

    /** The writer for a JSON property name, or null when the class has no such property. */
    Writer writer(String jsonName) {
        Writer writer = writers.get(jsonName);
        if (writer == null && eventModel) {
            writer = relaxedWriters.get(relaxed(jsonName));
        }
        return writer;
    }

    boolean isRecord() {
        return components != null;
    }

    RecordComponent[] components() {
        return components;
    }

    /** A new instance, or null when the class has no usable constructor. */
    Constructor<?> constructor() {
        return constructor;
    }
}
