package example.lib;

public class Greeter {
    public String greet(String name) {
        return "hi " + name;
    }
}
