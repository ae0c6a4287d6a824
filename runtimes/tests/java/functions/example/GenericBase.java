package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.List;

/** Type parameters resolved through a generic superclass. */
public abstract class GenericBase<I> implements RequestHandler<I, String> {
    protected abstract String describe(I input);

    @Override
    public String handleRequest(I input, Context context) {
        return describe(input);
    }

    public static class ItemsHandler extends GenericBase<List<Order.Item>> {
        @Override
        protected String describe(List<Order.Item> items) {
            StringBuilder text = new StringBuilder();
            for (Order.Item item : items) {
                text.append(item.getSku()).append('x').append(item.count).append(' ');
            }
            return text.toString().trim();
        }
    }
}
