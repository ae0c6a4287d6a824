package example;

import com.amazonaws.services.lambda.runtime.events.SQSEvent;
import com.amazonaws.services.lambda.runtime.events.ScheduledEvent;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** AWS event classes: JSON names that differ from their bean names still bind, as on AWS. */
public class Events {
    public List<String> sqs(SQSEvent event) {
        List<String> result = new ArrayList<>();
        for (SQSEvent.SQSMessage message : event.getRecords()) {
            result.add(message.getMessageId() + "|" + message.getBody() + "|" + message.getEventSourceArn() + "|"
                    + message.getAttributes().get("ApproximateReceiveCount"));
        }
        return result;
    }

    public Map<String, Object> scheduled(ScheduledEvent event) {
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("detailType", event.getDetailType());
        result.put("source", event.getSource());
        result.put("resources", event.getResources());
        return result;
    }

    /** A user POJO gets Jackson's exact, case-sensitive matching: "Name" does not set "name". */
    public static class Person {
        public String name;
    }

    public String person(Person person) {
        return String.valueOf(person.name);
    }
}
