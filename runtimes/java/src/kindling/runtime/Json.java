package kindling.runtime;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * JSON text to a tree of plain Java values, and plain values back to text.
 *
 * <p>Trees use {@link LinkedHashMap} for objects (key order kept), {@link ArrayList} for arrays,
 * {@link String}, {@link Boolean}, {@code null} and {@link Num} for numbers, whose text is kept
 * until the target type is known ({@link Binder}); {@link #natural} turns numbers into Integer,
 * Long, BigInteger or Double as Jackson does for untyped values. The grammar is RFC 8259 plus the
 * non-numeric numbers {@code NaN}, {@code Infinity} and {@code -Infinity}, which Lambda's Java
 * serializer also accepts. Output escapes only what JSON requires (no HTML or non-ASCII escaping,
 * like the Jackson and Gson configurations of AWS's runtime).
 */
final class Json {
    /** Deepest nesting accepted when reading or writing (Jackson's default limit). */
    static final int MAX_DEPTH = 1000;

    private Json() {}

    /** A JSON number as written in the document. */
    static final class Num extends Number {
        private static final long serialVersionUID = 1L;
        final String text;

        Num(String text) {
            this.text = text;
        }

        boolean isIntegral() {
            for (int i = 0; i < text.length(); i++) {
                char c = text.charAt(i);
                if (c == '.' || c == 'e' || c == 'E' || c == 'N' || c == 'I') {
                    return false;
                }
            }
            return true;
        }

        /** Integer, Long or BigInteger for integral text, else Double (Jackson's untyped mapping). */
        Number natural() {
            if (isIntegral()) {
                BigInteger big = new BigInteger(text);
                if (big.bitLength() < 32) {
                    return Integer.valueOf(big.intValue());
                }
                if (big.bitLength() < 64) {
                    return Long.valueOf(big.longValue());
                }
                return big;
            }
            return Double.valueOf(doubleValue());
        }

        BigDecimal bigDecimal() {
            return new BigDecimal(text);
        }

        @Override
        public int intValue() {
            return isIntegral() ? new BigInteger(text).intValue() : (int) doubleValue();
        }

        @Override
        public long longValue() {
            return isIntegral() ? new BigInteger(text).longValue() : (long) doubleValue();
        }

        @Override
        public float floatValue() {
            return (float) doubleValue();
        }

        @Override
        public double doubleValue() {
            if (text.equals("NaN")) {
                return Double.NaN;
            }
            if (text.equals("Infinity")) {
                return Double.POSITIVE_INFINITY;
            }
            if (text.equals("-Infinity")) {
                return Double.NEGATIVE_INFINITY;
            }
            return Double.parseDouble(text);
        }

        @Override
        public String toString() {
            return text;
        }

        @Override
        public boolean equals(Object other) {
            return other instanceof Num && ((Num) other).text.equals(text);
        }

        @Override
        public int hashCode() {
            return text.hashCode();
        }
    }

    /** A document that is not JSON; the message names the problem and its position. */
    static final class ParseException extends Exception {
        private static final long serialVersionUID = 1L;

        ParseException(String message) {
            super(message);
        }
    }

    // ------------------------------------------------------------------ reading

    static Object parse(String text) throws ParseException {
        Reader reader = new Reader(text);
        reader.skipWhitespace();
        Object value = reader.value(0);
        reader.skipWhitespace();
        if (reader.pos != text.length()) {
            throw reader.error("unexpected content after the JSON value");
        }
        return value;
    }

    /** The tree with every {@link Num} replaced by its natural Java number (for untyped targets). */
    @SuppressWarnings("unchecked")
    static Object natural(Object tree) {
        if (tree instanceof Num) {
            return ((Num) tree).natural();
        }
        if (tree instanceof Map) {
            for (Map.Entry<String, Object> entry : ((Map<String, Object>) tree).entrySet()) {
                entry.setValue(natural(entry.getValue()));
            }
        } else if (tree instanceof List) {
            List<Object> list = (List<Object>) tree;
            for (int i = 0; i < list.size(); i++) {
                list.set(i, natural(list.get(i)));
            }
        }
        return tree;
    }

    private static final class Reader {
        private final String text;
        int pos;

        Reader(String text) {
            this.text = text;
        }

        ParseException error(String what) {
            int line = 1;
            int column = 1;
            for (int i = 0; i < pos && i < text.length(); i++) {
                if (text.charAt(i) == '\n') {
                    line++;
                    column = 1;
                } else {
                    column++;
                }
            }
            return new ParseException(what + " at line " + line + ", column " + column);
        }

        void skipWhitespace() {
            while (pos < text.length()) {
                char c = text.charAt(pos);
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                    return;
                }
                pos++;
            }
        }

        Object value(int depth) throws ParseException {
            if (depth > MAX_DEPTH) {
                throw error("document nested deeper than " + MAX_DEPTH + " levels");
            }
            if (pos >= text.length()) {
                throw error("unexpected end of input");
            }
            char c = text.charAt(pos);
            switch (c) {
                case '{':
                    return object(depth);
                case '[':
                    return array(depth);
                case '"':
                    return string();
                case 't':
                    literal("true");
                    return Boolean.TRUE;
                case 'f':
                    literal("false");
                    return Boolean.FALSE;
                case 'n':
                    literal("null");
                    return null;
                case 'N':
                    literal("NaN");
                    return new Num("NaN");
                case 'I':
                    literal("Infinity");
                    return new Num("Infinity");
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        return number();
                    }
                    throw error("unexpected character '" + printable(c) + "'");
            }
        }

        private void literal(String word) throws ParseException {
            if (!text.startsWith(word, pos)) {
                throw error("invalid literal (expected '" + word + "')");
            }
            pos += word.length();
        }

        private Map<String, Object> object(int depth) throws ParseException {
            Map<String, Object> result = new LinkedHashMap<String, Object>();
            pos++;
            skipWhitespace();
            if (pos < text.length() && text.charAt(pos) == '}') {
                pos++;
                return result;
            }
            while (true) {
                skipWhitespace();
                if (pos >= text.length() || text.charAt(pos) != '"') {
                    throw error("expected a property name in double quotes");
                }
                String key = string();
                skipWhitespace();
                if (pos >= text.length() || text.charAt(pos) != ':') {
                    throw error("expected ':' after a property name");
                }
                pos++;
                skipWhitespace();
                result.put(key, value(depth + 1));
                skipWhitespace();
                if (pos >= text.length()) {
                    throw error("unexpected end of input inside an object");
                }
                char c = text.charAt(pos++);
                if (c == '}') {
                    return result;
                }
                if (c != ',') {
                    pos--;
                    throw error("expected ',' or '}' in an object");
                }
            }
        }

        private List<Object> array(int depth) throws ParseException {
            List<Object> result = new ArrayList<Object>();
            pos++;
            skipWhitespace();
            if (pos < text.length() && text.charAt(pos) == ']') {
                pos++;
                return result;
            }
            while (true) {
                skipWhitespace();
                result.add(value(depth + 1));
                skipWhitespace();
                if (pos >= text.length()) {
                    throw error("unexpected end of input inside an array");
                }
                char c = text.charAt(pos++);
                if (c == ']') {
                    return result;
                }
                if (c != ',') {
                    pos--;
                    throw error("expected ',' or ']' in an array");
                }
            }
        }

        private String string() throws ParseException {
            int start = ++pos;
            // Fast path: no escapes.
            while (pos < text.length()) {
                char c = text.charAt(pos);
                if (c == '"') {
                    return text.substring(start, pos++);
                }
                if (c == '\\') {
                    break;
                }
                pos++;
            }
            StringBuilder out = new StringBuilder(pos - start + 16);
            out.append(text, start, pos);
            while (pos < text.length()) {
                char c = text.charAt(pos++);
                if (c == '"') {
                    return out.toString();
                }
                if (c != '\\') {
                    out.append(c);
                    continue;
                }
                if (pos >= text.length()) {
                    break;
                }
                char escaped = text.charAt(pos++);
                switch (escaped) {
                    case '"':
                    case '\\':
                    case '/':
                        out.append(escaped);
                        break;
                    case 'b':
                        out.append('\b');
                        break;
                    case 'f':
                        out.append('\f');
                        break;
                    case 'n':
                        out.append('\n');
                        break;
                    case 'r':
                        out.append('\r');
                        break;
                    case 't':
                        out.append('\t');
                        break;
                    case 'u':
                        if (pos + 4 > text.length()) {
                            throw error("truncated \\u escape");
                        }
                        int code = 0;
                        for (int i = 0; i < 4; i++) {
                            int digit = Character.digit(text.charAt(pos++), 16);
                            if (digit < 0) {
                                pos--;
                                throw error("invalid \\u escape");
                            }
                            code = code * 16 + digit;
                        }
                        out.append((char) code);
                        break;
                    default:
                        pos--;
                        throw error("invalid escape '\\" + printable(escaped) + "'");
                }
            }
            throw error("unterminated string");
        }

        private Num number() throws ParseException {
            int start = pos;
            if (text.charAt(pos) == '-') {
                pos++;
                if (text.startsWith("Infinity", pos)) {
                    pos += "Infinity".length();
                    return new Num("-Infinity");
                }
            }
            int digits = digits();
            if (digits == 0) {
                throw error("invalid number");
            }
            if (pos < text.length() && text.charAt(pos) == '.') {
                pos++;
                if (digits() == 0) {
                    throw error("invalid number: digits expected after '.'");
                }
            }
            if (pos < text.length() && (text.charAt(pos) == 'e' || text.charAt(pos) == 'E')) {
                pos++;
                if (pos < text.length() && (text.charAt(pos) == '+' || text.charAt(pos) == '-')) {
                    pos++;
                }
                if (digits() == 0) {
                    throw error("invalid number: digits expected in the exponent");
                }
            }
            return new Num(text.substring(start, pos));
        }

        private int digits() {
            int start = pos;
            while (pos < text.length() && text.charAt(pos) >= '0' && text.charAt(pos) <= '9') {
                pos++;
            }
            return pos - start;
        }

        private static String printable(char c) {
            return c < ' ' ? "\\u" + hex4(c) : String.valueOf(c);
        }
    }

    // ------------------------------------------------------------------ writing

    /** Writes a tree or plain value: Map, List, array-free Iterable, String, Number, Boolean, null. */
    static String write(Object value) {
        StringBuilder out = new StringBuilder();
        writeValue(out, value, 0);
        return out.toString();
    }

    private static void writeValue(StringBuilder out, Object value, int depth) {
        if (depth > MAX_DEPTH) {
            throw new IllegalArgumentException("value nested deeper than " + MAX_DEPTH + " levels");
        }
        if (value == null) {
            out.append("null");
        } else if (value instanceof String) {
            quote(out, (String) value);
        } else if (value instanceof Boolean) {
            out.append(((Boolean) value).booleanValue() ? "true" : "false");
        } else if (value instanceof Number) {
            number(out, (Number) value);
        } else if (value instanceof Map) {
            out.append('{');
            boolean first = true;
            for (Object item : ((Map<?, ?>) value).entrySet()) {
                Map.Entry<?, ?> entry = (Map.Entry<?, ?>) item;
                if (!first) {
                    out.append(',');
                }
                first = false;
                quote(out, String.valueOf(entry.getKey()));
                out.append(':');
                writeValue(out, entry.getValue(), depth + 1);
            }
            out.append('}');
        } else if (value instanceof Iterable) {
            out.append('[');
            Iterator<?> items = ((Iterable<?>) value).iterator();
            boolean first = true;
            while (items.hasNext()) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                writeValue(out, items.next(), depth + 1);
            }
            out.append(']');
        } else {
            quote(out, value.toString());
        }
    }

    /** A number as Jackson writes it; NaN and infinities become strings (WRITE_NAN_AS_STRINGS). */
    static void number(StringBuilder out, Number value) {
        if (value instanceof Double || value instanceof Float) {
            double d = value.doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                out.append('"').append(value.toString()).append('"');
                return;
            }
        } else if (value instanceof Num) {
            String text = ((Num) value).text;
            if (text.equals("NaN") || text.endsWith("Infinity")) {
                out.append('"').append(text).append('"');
                return;
            }
        }
        out.append(value.toString());
    }

    /** A JSON string literal: quotes, backslashes and control characters escaped, nothing else. */
    static void quote(StringBuilder out, String text) {
        out.append('"');
        int length = text.length();
        int run = 0;
        for (int i = 0; i < length; i++) {
            char c = text.charAt(i);
            if (c >= ' ' && c != '"' && c != '\\') {
                continue;
            }
            out.append(text, run, i);
            run = i + 1;
            switch (c) {
                case '"':
                    out.append("\\\"");
                    break;
                case '\\':
                    out.append("\\\\");
                    break;
                case '\n':
                    out.append("\\n");
                    break;
                case '\r':
                    out.append("\\r");
                    break;
                case '\t':
                    out.append("\\t");
                    break;
                case '\b':
                    out.append("\\b");
                    break;
                case '\f':
                    out.append("\\f");
                    break;
                default:
                    out.append("\\u").append(hex4(c));
            }
        }
        out.append(text, run, length);
        out.append('"');
    }

    static String hex4(int c) {
        String digits = Integer.toHexString(c).toUpperCase();
        return "0000".substring(digits.length()) + digits;
    }
}
