package example;

public class NotAHandler {
    public String handle(Object event) {
        return "only as NotAHandler::handle";
    }
}
