package example;

/** The tests rewrite this class file's version to one no JVM knows yet (a "compile" error). */
public class Future {
    public String handle(Object event) {
        return "never";
    }
}
