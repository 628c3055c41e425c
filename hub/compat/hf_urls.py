app_name = "huggingface"
urlpatterns: list = []
