package kindling.runtime;

import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Calendar;
import java.util.Date;
import java.util.List;

/**
 * Dates and times as Lambda's Java serializer writes and reads them (Jackson with its JavaTime
 * module and timestamps enabled): {@code Date} as epoch milliseconds, {@code Instant} and zoned
 * date-times as decimal epoch seconds with nine fractional digits, local dates and times as
 * arrays of fields. Reading also accepts ISO-8601 text. Loaded only when a time value is met.
 */
final class TimeValues {
    private TimeValues() {}

    static boolean handles(Class<?> type) {
        return type == Date.class || type == Instant.class || type == LocalDate.class || type == LocalDateTime.class
                || type == LocalTime.class || type == OffsetDateTime.class || type == ZonedDateTime.class
                || type == Duration.class || Calendar.class.isAssignableFrom(type);
    }

    // ------------------------------------------------------------------ writing

    /** Appends the JSON for a time value, or returns false if `value` is not one. */
    static boolean write(StringBuilder out, Object value) {
        if (value instanceof Date) {
            out.append(((Date) value).getTime());
        } else if (value instanceof Calendar) {
            out.append(((Calendar) value).getTimeInMillis());
        } else if (value instanceof Instant) {
            seconds(out, ((Instant) value).getEpochSecond(), ((Instant) value).getNano());
        } else if (value instanceof OffsetDateTime) {
            Instant instant = ((OffsetDateTime) value).toInstant();
            seconds(out, instant.getEpochSecond(), instant.getNano());
        } else if (value instanceof ZonedDateTime) {
            Instant instant = ((ZonedDateTime) value).toInstant();
            seconds(out, instant.getEpochSecond(), instant.getNano());
        } else if (value instanceof Duration) {
            seconds(out, ((Duration) value).getSeconds(), ((Duration) value).getNano());
        } else if (value instanceof LocalDate) {
            LocalDate date = (LocalDate) value;
            out.append('[').append(date.getYear()).append(',').append(date.getMonthValue()).append(',')
                    .append(date.getDayOfMonth()).append(']');
        } else if (value instanceof LocalDateTime) {
            LocalDateTime time = (LocalDateTime) value;
            out.append('[').append(time.getYear()).append(',').append(time.getMonthValue()).append(',')
                    .append(time.getDayOfMonth()).append(',');
            timeFields(out, time.getHour(), time.getMinute(), time.getSecond(), time.getNano());
            out.append(']');
        } else if (value instanceof LocalTime) {
            LocalTime time = (LocalTime) value;
            out.append('[');
            timeFields(out, time.getHour(), time.getMinute(), time.getSecond(), time.getNano());
            out.append(']');
        } else {
            return false;
        }
        return true;
    }

    private static void seconds(StringBuilder out, long seconds, int nanos) {
        out.append(seconds).append('.');
        if (nanos == 0) {
            out.append('0');
            return;
        }
        String digits = Integer.toString(nanos);
        for (int i = digits.length(); i < 9; i++) {
            out.append('0');
        }
        out.append(digits);
    }

    private static void timeFields(StringBuilder out, int hour, int minute, int second, int nano) {
        out.append(hour).append(',').append(minute);
        if (second > 0 || nano > 0) {
            out.append(',').append(second);
            if (nano > 0) {
                out.append(',').append(nano);
            }
        }
    }

    // ------------------------------------------------------------------ reading

    /**
     * `tree` (a string, number or array of numbers) as `type`. Numbers for Date are epoch
     * milliseconds, except in AWS event models, where they are epoch seconds.
     */
    static Object read(Object tree, Class<?> type, boolean secondsForDates) throws Binder.BindException {
        try {
            if (type == Date.class || Calendar.class.isAssignableFrom(type)) {
                long millis;
                if (tree instanceof Json.Num) {
                    BigDecimal number = ((Json.Num) tree).bigDecimal();
                    millis = (secondsForDates ? number.movePointRight(3) : number).longValue();
                } else {
                    millis = instant(text(tree, type)).toEpochMilli();
                }
                if (type == Date.class) {
                    return new Date(millis);
                }
                Calendar calendar = Calendar.getInstance();
                calendar.setTimeInMillis(millis);
                return calendar;
            }
            if (type == Instant.class) {
                return tree instanceof Json.Num ? fromSeconds((Json.Num) tree) : instant(text(tree, type));
            }
            if (type == OffsetDateTime.class) {
                if (tree instanceof Json.Num) {
                    return OffsetDateTime.ofInstant(fromSeconds((Json.Num) tree), ZoneOffset.UTC);
                }
                return OffsetDateTime.parse(text(tree, type));
            }
            if (type == ZonedDateTime.class) {
                if (tree instanceof Json.Num) {
                    return ZonedDateTime.ofInstant(fromSeconds((Json.Num) tree), ZoneOffset.UTC);
                }
                return ZonedDateTime.parse(text(tree, type));
            }
            if (type == Duration.class) {
                if (tree instanceof Json.Num) {
                    BigDecimal seconds = ((Json.Num) tree).bigDecimal();
                    return Duration.ofSeconds(seconds.longValue(), seconds.remainder(BigDecimal.ONE).movePointRight(9).intValue());
                }
                return Duration.parse(text(tree, type));
            }
            if (type == LocalDate.class) {
                if (tree instanceof List) {
                    int[] f = fields(tree, 3, 3);
                    return LocalDate.of(f[0], f[1], f[2]);
                }
                return LocalDate.parse(text(tree, type));
            }
            if (type == LocalDateTime.class) {
                if (tree instanceof List) {
                    int[] f = fields(tree, 5, 7);
                    return LocalDateTime.of(f[0], f[1], f[2], f[3], f[4], f[5], f[6]);
                }
                return LocalDateTime.parse(text(tree, type));
            }
            if (type == LocalTime.class) {
                if (tree instanceof List) {
                    int[] f = fields(tree, 2, 4);
                    return LocalTime.of(f[0], f[1], f[2], f[3]);
                }
                return LocalTime.parse(text(tree, type));
            }
        } catch (ArithmeticException | java.time.DateTimeException e) {
            throw new Binder.BindException("Cannot deserialize value of type `" + type.getName() + "` from " + Binder.describeTree(tree)
                    + ": " + e.getMessage());
        }
        throw new Binder.BindException("Cannot deserialize value of type `" + type.getName() + "`");
    }

    private static String text(Object tree, Class<?> type) throws Binder.BindException {
        if (tree instanceof String) {
            return ((String) tree).trim();
        }
        throw new Binder.BindException("Cannot deserialize value of type `" + type.getName() + "` from " + Binder.describeTree(tree));
    }

    private static Instant fromSeconds(Json.Num number) {
        BigDecimal seconds = number.bigDecimal();
        long whole = seconds.setScale(0, java.math.RoundingMode.FLOOR).longValue();
        int nanos = seconds.subtract(BigDecimal.valueOf(whole)).movePointRight(9).intValue();
        return Instant.ofEpochSecond(whole, nanos);
    }

    /** ISO-8601 instant, offset date-time, local date-time (UTC) or date (UTC midnight), or epoch millis text. */
    private static Instant instant(String text) {
        try {
            return Instant.parse(text);
        } catch (DateTimeParseException ignored) {
            // try the other forms below
        }
        try {
            return OffsetDateTime.parse(text).toInstant();
        } catch (DateTimeParseException ignored) {
            // try the other forms below
        }
        try {
            return LocalDateTime.parse(text).toInstant(ZoneOffset.UTC);
        } catch (DateTimeParseException ignored) {
            // try the other forms below
        }
        if (isDigits(text)) {
            return Instant.ofEpochMilli(Long.parseLong(text));
        }
        return LocalDate.parse(text).atStartOfDay(ZoneOffset.UTC).toInstant();
    }

    private static boolean isDigits(String text) {
        if (text.isEmpty() || text.length() > 18) {
            return false;
        }
        for (int i = 0; i < text.length(); i++) {
            if (text.charAt(i) < '0' || text.charAt(i) > '9') {
                return false;
            }
        }
        return true;
    }

    private static int[] fields(Object tree, int min, int max) throws Binder.BindException {
        List<?> list = (List<?>) tree;
        if (list.size() < min || list.size() > max) {
            throw new Binder.BindException("Unexpected array of " + list.size() + " values for a date or time");
        }
        int[] result = new int[max];
        List<Object> values = new ArrayList<Object>(list);
        for (int i = 0; i < values.size(); i++) {
            if (!(values.get(i) instanceof Json.Num)) {
                throw new Binder.BindException("Expected numbers in a date or time array");
            }
            result[i] = ((Json.Num) values.get(i)).intValue();
        }
        return result;
    }
}
