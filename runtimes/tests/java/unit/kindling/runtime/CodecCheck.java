package kindling.runtime;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.reflect.Type;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Drives the runtime's JSON codec and binder from the tests: one JSON case per stdin line,
 * {"op": "roundtrip" | "bind", "text": "...", "type": "<field of Holder>"}, one JSON result per
 * stdout line, {"ok": true, "out": "..."} or {"ok": false, "error": "..."}.
 */
public final class CodecCheck {
    enum Status { NEW, PAID }

    /** Declared types to bind to, by field name. */
    @SuppressWarnings("unused")
    static final class Holder {
        int intValue;
        Integer boxedInt;
        long longValue;
        double doubleValue;
        boolean boolValue;
        char charValue;
        String string;
        BigDecimal decimal;
        Object object;
        List<Integer> listOfInt;
        List<List<String>> listOfLists;
        Map<String, Long> mapOfLong;
        Map<Status, Integer> mapByEnum;
        int[] intArray;
        byte[] bytes;
        Optional<String> optional;
        Set<String> setOfString;
        Status status;
        Instant instant;
        LocalDate localDate;
        LocalDateTime localDateTime;
        Date date;
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        String line;
        while ((line = in.readLine()) != null) {
            @SuppressWarnings("unchecked")
            Map<String, Object> request = (Map<String, Object>) Json.parse(line);
            String text = (String) request.get("text");
            Map<String, Object> result = new LinkedHashMap<>();
            try {
                if ("roundtrip".equals(request.get("op"))) {
                    result.put("out", Json.write(Json.natural(Json.parse(text))));
                } else {
                    Type type = Holder.class.getDeclaredField((String) request.get("type")).getGenericType();
                    Object value = Binder.fromJson(text, type);
                    result.put("out", new String(Binder.toJson(value), StandardCharsets.UTF_8));
                    result.put("class", value == null ? null : value.getClass().getName());
                }
                result.put("ok", Boolean.TRUE);
            } catch (Exception e) {
                result.put("ok", Boolean.FALSE);
                result.put("error", e.getClass().getSimpleName() + ": " + e.getMessage());
            }
            out.println(Json.write(result));
        }
    }
}
