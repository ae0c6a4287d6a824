package kindling.runtime;

import java.io.File;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Deque;
import java.util.List;
import java.util.Map;

/**
 * Finds the user's handler the way Lambda's Java runtime does.
 *
 * <p>Class path, in order: the task root directory (the unzipped deployment package), the jars in
 * {@code <task root>/lib} and in {@code <opt>/java/lib} (layers), each directory's jars sorted by
 * name. The parent is the platform class loader, so the function never sees this runtime's
 * classes.
 *
 * <p>Handler strings: {@code package.Class::method} or {@code package.Class}; the latter must
 * implement RequestStreamHandler or RequestHandler. Which problems end the init phase and which
 * are reported by each invocation follows AWS: a failing static initializer or constructor is an
 * init error; a missing class, method or interface is reported when invoked.
 */
final class FunctionLoader {
    private FunctionLoader() {}

    static URLClassLoader classLoader(String taskRoot, String optRoot) throws MalformedURLException {
        List<URL> urls = new ArrayList<URL>();
        urls.add(new File(taskRoot).toURI().toURL());
        addJars(new File(taskRoot, "lib"), urls);
        addJars(new File(optRoot, "java/lib"), urls);
        return new URLClassLoader(urls.toArray(new URL[0]), ClassLoader.getPlatformClassLoader());
    }

    private static void addJars(File directory, List<URL> urls) throws MalformedURLException {
        String[] names = directory.list();
        if (names == null) {
            return;
        }
        Arrays.sort(names);
        for (String name : names) {
            if (name.length() > 4 && name.endsWith(".jar")) {
                urls.add(new File(directory, name).toURI().toURL());
            }
        }
    }

    /** The class name part of a handler string. */
    static String className(String handler) {
        int colons = handler.lastIndexOf("::");
        return colons < 0 ? handler : handler.substring(0, colons);
    }

    /**
     * The handler, or a {@link Function.Faulty} for problems reported at invocation. Throws a fatal
     * {@link UserFault} for problems that fail the init phase.
     */
    static Function load(String handler, ClassLoader loader, UserApi api) {
        int colons = handler.lastIndexOf("::");
        String className = className(handler);
        String methodName = colons < 0 ? null : handler.substring(colons + 2);
        if (className.isEmpty() || (methodName != null && methodName.isEmpty())) {
            return new Function.Faulty(UserFault.of("Invalid handler: `" + handler + "'"));
        }
        Class<?> type;
        try {
            type = Class.forName(className, true, loader);
        } catch (ClassNotFoundException e) {
            return new Function.Faulty(UserFault.classNotFound(e, className));
        } catch (NoClassDefFoundError e) {
            // AWS reports this one when invoked, then ends the runtime.
            return new Function.Faulty(UserFault.loadingClass(e, className));
        } catch (Throwable t) {
            throw UserFault.loadingClass(t, className);
        }
        Function function = methodName == null ? loadHandlerClass(type, api) : loadMethod(type, methodName, api);
        if (function instanceof Function.Faulty && ((Function.Faulty) function).fault.fatal) {
            throw ((Function.Faulty) function).fault;
        }
        return function;
    }

    // ------------------------------------------------------------------ Class handlers

    private static Function loadHandlerClass(Class<?> type, UserApi api) {
        Class<?> streamHandler = api.find(UserApi.PACKAGE + "RequestStreamHandler");
        Class<?> requestHandler = api.find(UserApi.PACKAGE + "RequestHandler");
        try {
            if (streamHandler != null && streamHandler.isAssignableFrom(type)) {
                Method method = streamHandler.getMethod("handleRequest", InputStream.class, OutputStream.class, api.contextType());
                return new Function.Stream(method, newInstance(type), true, true, true, true);
            }
            if (requestHandler != null && requestHandler.isAssignableFrom(type)) {
                return requestHandlerClass(type, requestHandler, api);
            }
        } catch (UserFault fault) {
            return new Function.Faulty(fault);
        } catch (Throwable t) {
            return new Function.Faulty(UserFault.of(t, false));
        }
        return new Function.Faulty(UserFault.of("Class does not implement an appropriate handler interface: " + type.getName()));
    }

    private static Function requestHandlerClass(Class<?> type, Class<?> requestHandler, UserApi api) throws Throwable {
        Type[] parameters = interfaceParameters(type, requestHandler);
        if (parameters == null) {
            return new Function.Faulty(UserFault.of("Class " + type.getName()
                    + " does not implement RequestHandler with concrete type parameters"));
        }
        if (parameters.length != 2) {
            return new Function.Faulty(UserFault.of(
                    "Invalid class signature for RequestHandler. Expected two generic types, got " + parameters.length));
        }
        for (Type parameter : parameters) {
            if (parameter instanceof TypeVariable && Types.raw(parameter) == Object.class) {
                return new Function.Faulty(UserFault.of("Class " + type.getName()
                        + " does not implement RequestHandler with concrete type parameters: parameter " + parameter
                        + " has no upper bound."));
            }
        }
        Method method = requestHandler.getMethod("handleRequest", Object.class, api.contextType());
        Type output = isVoid(parameters[1]) ? null : parameters[1];
        return new Function.Pojo(method, newInstance(type), parameters[0], output, true, true);
    }

    /**
     * The actual type arguments `type` gives to the generic interface `target`, resolving type
     * variables through superclasses and superinterfaces (breadth first), or null.
     */
    static Type[] interfaceParameters(Class<?> type, Class<?> target) {
        Deque<Object[]> pending = new ArrayDeque<Object[]>();
        pending.add(new Object[] {type, new java.util.HashMap<String, Type>()});
        while (!pending.isEmpty()) {
            Object[] entry = pending.poll();
            Class<?> current = (Class<?>) entry[0];
            @SuppressWarnings("unchecked")
            Map<String, Type> bindings = (Map<String, Type>) entry[1];
            List<Type> supertypes = new ArrayList<Type>(Arrays.asList(current.getGenericInterfaces()));
            if (current.getGenericSuperclass() != null) {
                supertypes.add(current.getGenericSuperclass());
            }
            for (Type supertype : supertypes) {
                Type resolved = Types.resolve(supertype, bindings);
                Class<?> raw = Types.raw(resolved);
                if (raw == target) {
                    return resolved instanceof ParameterizedType ? ((ParameterizedType) resolved).getActualTypeArguments() : null;
                }
                if (target.isAssignableFrom(raw)) {
                    pending.add(new Object[] {raw, Types.bindings(resolved)});
                }
            }
        }
        return null;
    }

    private static boolean isVoid(Type type) {
        return type == void.class || type == Void.class;
    }

    /** A new instance through the public zero-argument constructor; a throwing constructor is fatal. */
    private static Object newInstance(Class<?> type) throws Throwable {
        Constructor<?> constructor;
        try {
            constructor = type.getConstructor();
        } catch (NoSuchMethodException e) {
            if (type.getEnclosingClass() != null && !Modifier.isStatic(type.getModifiers())) {
                throw new Exception("Class " + type.getName() + " cannot be instantiated because it is a non-static inner class");
            }
            throw new Exception("Class " + type.getName() + " has no public zero-argument constructor", e);
        }
        try {
            return constructor.newInstance();
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            throw UserFault.of(UserFault.filterStackTrace(cause, false), true);
        } catch (InstantiationException e) {
            throw e.getCause() == null ? e : e.getCause();
        }
    }

    // ------------------------------------------------------------------ Class::method handlers

    /** Methods tried in this order: non-bridge first, then longer signatures (a final Context counts double). */
    private static final class Priority implements Comparator<Method> {
        private final UserApi api;

        Priority(UserApi api) {
            this.api = api;
        }

        @Override
        public int compare(Method left, Method right) {
            if (!left.isBridge() && right.isBridge()) {
                return -1;
            }
            if (left.isBridge() && !right.isBridge()) {
                return 1;
            }
            return -Integer.compare(weight(left), weight(right));
        }

        private int weight(Method method) {
            Class<?>[] parameters = method.getParameterTypes();
            int weight = parameters.length;
            if (weight > 0 && isContext(parameters[weight - 1], api)) {
                weight++;
            }
            return weight;
        }
    }

    static boolean isContext(Type type, UserApi api) {
        return type instanceof Class && type == api.contextType() && type != null;
    }

    private static Function loadMethod(Class<?> type, String name, UserApi api) {
        Method[] all;
        try {
            all = type.getMethods();
        } catch (NoClassDefFoundError e) {
            return new Function.Faulty(new UserFault("Error loading method " + name + " on class " + type.getName(),
                    e.getClass().getName(), UserFault.trace(e), false));
        }
        List<Method> candidates = new ArrayList<Method>();
        for (Method method : all) {
            if (method.getName().equals(name)) {
                candidates.add(method);
            }
        }
        candidates.sort(new Priority(api));
        for (Method method : candidates) {
            Function function = overload(type, method, api);
            if (function != null) {
                return function;
            }
        }
        return new Function.Faulty(UserFault.of("No public method named " + name
                + " with appropriate method signature found on class " + type.getName()));
    }

    /** The function for one overload, or null when its signature is not a handler signature. */
    private static Function overload(Class<?> type, Method method, UserApi api) {
        Type[] parameters = method.getGenericParameterTypes();
        Type returns = method.getGenericReturnType();
        Type output = isVoid(returns) ? null : returns;
        switch (parameters.length) {
            case 0:
                return pojo(type, method, null, output, false);
            case 1:
                if (parameters[0] == InputStream.class) {
                    return stream(type, method, true, false, false);
                }
                if (parameters[0] == OutputStream.class) {
                    return stream(type, method, false, true, false);
                }
                if (isContext(parameters[0], api)) {
                    return pojo(type, method, null, output, true);
                }
                return pojo(type, method, parameters[0], output, false);
            case 2:
                if (parameters[0] == OutputStream.class) {
                    if (isContext(parameters[1], api)) {
                        return stream(type, method, false, true, true);
                    }
                    System.err.println("Ignoring two-argument overload because first argument type is OutputStream and second argument type is not Context");
                    return null;
                }
                if (isContext(parameters[0], api)) {
                    System.err.println("Ignoring two-argument overload because first argument type is Context");
                    return null;
                }
                if (parameters[0] == InputStream.class) {
                    if (parameters[1] == OutputStream.class) {
                        return stream(type, method, true, true, false);
                    }
                    if (isContext(parameters[1], api)) {
                        return stream(type, method, true, false, true);
                    }
                    System.err.println("Ignoring two-argument overload because second parameter type, "
                            + Types.raw(parameters[1]).getName() + ", is not OutputStream.");
                    return null;
                }
                if (isContext(parameters[1], api)) {
                    return pojo(type, method, parameters[0], output, true);
                }
                System.err.println("Ignoring two-argument overload because second parameter type is not Context");
                return null;
            case 3:
                if (parameters[0] == InputStream.class && parameters[1] == OutputStream.class && isContext(parameters[2], api)) {
                    return stream(type, method, true, true, true);
                }
                System.err.println("Ignoring three-argument overload because argument signature is not (InputStream, OutputStream, Context");
                return null;
            default:
                System.err.println("Ignoring an overload of method " + method.getName()
                        + " because it has too many parameters: Expected at most 3, got " + parameters.length);
                return null;
        }
    }

    private static Object instanceFor(Class<?> type, Method method) throws Throwable {
        return Modifier.isStatic(method.getModifiers()) ? null : newInstance(type);
    }

    private static Function pojo(Class<?> type, Method method, Type input, Type output, boolean needsContext) {
        try {
            return new Function.Pojo(method, instanceFor(type, method), input, output, needsContext, false);
        } catch (UserFault fault) {
            return new Function.Faulty(fault);
        } catch (Throwable t) {
            return new Function.Faulty(UserFault.of(t, false));
        }
    }

    private static Function stream(Class<?> type, Method method, boolean input, boolean output, boolean context) {
        if (!isVoid(method.getReturnType())) {
            System.err.println("Will ignore return type " + method.getReturnType() + " on byte stream handler");
        }
        try {
            return new Function.Stream(method, instanceFor(type, method), input, output, context, false);
        } catch (UserFault fault) {
            return new Function.Faulty(fault);
        } catch (Throwable t) {
            return new Function.Faulty(UserFault.of(t, false));
        }
    }
}
