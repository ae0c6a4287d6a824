package kindling.runtime;

import java.lang.reflect.Array;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.lang.reflect.WildcardType;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/** Small helpers over java.lang.reflect types: raw classes, type arguments, substitution. */
final class Types {
    private Types() {}

    static Class<?> raw(Type type) {
        if (type instanceof Class) {
            return (Class<?>) type;
        }
        if (type instanceof ParameterizedType) {
            return raw(((ParameterizedType) type).getRawType());
        }
        if (type instanceof GenericArrayType) {
            return Array.newInstance(raw(((GenericArrayType) type).getGenericComponentType()), 0).getClass();
        }
        if (type instanceof TypeVariable) {
            Type[] bounds = ((TypeVariable<?>) type).getBounds();
            return bounds.length == 0 ? Object.class : raw(bounds[0]);
        }
        if (type instanceof WildcardType) {
            Type[] upper = ((WildcardType) type).getUpperBounds();
            return upper.length == 0 ? Object.class : raw(upper[0]);
        }
        return Object.class;
    }

    /** The index-th type argument of a parameterized type, or Object when there is none. */
    static Type argument(Type type, int index) {
        if (type instanceof ParameterizedType) {
            Type[] args = ((ParameterizedType) type).getActualTypeArguments();
            if (index < args.length) {
                return args[index];
            }
        }
        return Object.class;
    }

    /** Component type of an array type (generic or not). */
    static Type component(Type type) {
        if (type instanceof GenericArrayType) {
            return ((GenericArrayType) type).getGenericComponentType();
        }
        Class<?> component = raw(type).getComponentType();
        return component == null ? Object.class : component;
    }

    /** Type variables of `type`'s raw class mapped to its actual arguments (empty if not parameterized). */
    static Map<String, Type> bindings(Type type) {
        Map<String, Type> result = new HashMap<String, Type>();
        if (type instanceof ParameterizedType) {
            TypeVariable<?>[] variables = raw(type).getTypeParameters();
            Type[] args = ((ParameterizedType) type).getActualTypeArguments();
            for (int i = 0; i < variables.length && i < args.length; i++) {
                result.put(variables[i].getName(), args[i]);
            }
        }
        return result;
    }

    /** `type` with the type variables in `bindings` substituted (others are left as they are). */
    static Type resolve(Type type, Map<String, Type> bindings) {
        if (bindings.isEmpty()) {
            return type;
        }
        if (type instanceof TypeVariable) {
            Type bound = bindings.get(((TypeVariable<?>) type).getName());
            return bound == null ? type : bound;
        }
        if (type instanceof ParameterizedType) {
            ParameterizedType parameterized = (ParameterizedType) type;
            Type[] args = parameterized.getActualTypeArguments().clone();
            boolean changed = false;
            for (int i = 0; i < args.length; i++) {
                Type resolved = resolve(args[i], bindings);
                changed |= resolved != args[i];
                args[i] = resolved;
            }
            return changed ? new Parameterized(parameterized.getRawType(), args, parameterized.getOwnerType()) : type;
        }
        if (type instanceof GenericArrayType) {
            Type component = resolve(((GenericArrayType) type).getGenericComponentType(), bindings);
            if (component instanceof Class) {
                return Array.newInstance((Class<?>) component, 0).getClass();
            }
            return type;
        }
        return type;
    }

    /** A parameterized type built at run time (after substituting type variables). */
    static final class Parameterized implements ParameterizedType {
        private final Type rawType;
        private final Type[] args;
        private final Type owner;

        Parameterized(Type rawType, Type[] args, Type owner) {
            this.rawType = rawType;
            this.args = args;
            this.owner = owner;
        }

        @Override
        public Type[] getActualTypeArguments() {
            return args.clone();
        }

        @Override
        public Type getRawType() {
            return rawType;
        }

        @Override
        public Type getOwnerType() {
            return owner;
        }

        @Override
        public boolean equals(Object other) {
            if (!(other instanceof ParameterizedType)) {
                return false;
            }
            ParameterizedType that = (ParameterizedType) other;
            return rawType.equals(that.getRawType()) && Arrays.equals(args, that.getActualTypeArguments());
        }

        @Override
        public int hashCode() {
            return rawType.hashCode() * 31 + Arrays.hashCode(args);
        }

        @Override
        public String toString() {
            StringBuilder text = new StringBuilder(raw(rawType).getName()).append('<');
            for (int i = 0; i < args.length; i++) {
                if (i > 0) {
                    text.append(", ");
                }
                text.append(args[i].getTypeName());
            }
            return text.append('>').toString();
        }
    }

    /** The type name Jackson prints in its messages. */
    static String describe(Type type) {
        return type instanceof Class ? ((Class<?>) type).getName() : type.getTypeName();
    }
}
