package example;

import example.lib.Greeter;

/** Uses a class from a jar in lib/ (and, in the layer test, from /opt/java/lib). */
public class LibUser {
    public String handle(String name) {
        return new Greeter().greet(name) + " via " + Greeter.class.getProtectionDomain().getCodeSource().getLocation().getPath();
    }
}
