package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;

public class OrderHandler implements RequestHandler<Order, Receipt> {
    @Override
    public Receipt handleRequest(Order order, Context context) {
        List<String> skus = new ArrayList<>();
        int units = order.quantity;
        if (order.getItems() != null) {
            for (Order.Item item : order.getItems()) {
                skus.add(item.getSku());
                units += item.count;
            }
        }
        BigDecimal total = order.getPrice() == null ? null : order.getPrice().multiply(BigDecimal.valueOf(units));
        Receipt receipt = new Receipt(order.getOrderId(), units, total, skus, order.getStatus(), order.isGift());
        if (order.getTags() != null) {
            receipt.note = order.getTags().get("note");
        }
        if (order.getCreatedAt() != 0) {
            receipt.note = "createdAt was set through a private setter: " + order.getCreatedAt();
        }
        return receipt;
    }
}
