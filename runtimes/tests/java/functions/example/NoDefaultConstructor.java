package example;

public class NoDefaultConstructor {
    public NoDefaultConstructor(String name) {
    }

    public String handle(Object event) {
        return "unreachable";
    }
}
